//! Guest memory: reading and writing the module's linear memory, and
//! handing data to the guest in memory it allocates itself
//! (`proxy_on_memory_allocate` / `malloc`), as cpp-host's
//! `copyToPointerSize`.

use crate::state::{HostState, Status};
use wasmtime::{Caller, Extern, Val};

/// Why a host call could not touch guest memory.
pub(crate) type MemResult<T> = Result<T, Status>;

fn memory(caller: &mut Caller<'_, HostState>) -> MemResult<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(Status::InvalidMemoryAccess),
    }
}

fn range(ptr: i32, len: i32) -> MemResult<(usize, usize)> {
    let start = usize::try_from(ptr as u32).map_err(|_| Status::InvalidMemoryAccess)?;
    let len = usize::try_from(len as u32).map_err(|_| Status::InvalidMemoryAccess)?;
    let end = start.checked_add(len).ok_or(Status::InvalidMemoryAccess)?;
    Ok((start, end))
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(crate) fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> MemResult<Vec<u8>> {
    let mem = memory(caller)?;
    let (start, end) = range(ptr, len)?;
    mem.data(&*caller)
        .get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or(Status::InvalidMemoryAccess)
}

/// Reads guest bytes as (lossy) text.
pub(crate) fn read_str(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> MemResult<String> {
    read(caller, ptr, len).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Writes `bytes` at `ptr`.
pub(crate) fn write(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> MemResult<()> {
    let mem = memory(caller)?;
    let len = i32::try_from(bytes.len()).map_err(|_| Status::InvalidMemoryAccess)?;
    let (start, end) = range(ptr, len)?;
    let dst = mem
        .data_mut(&mut *caller)
        .get_mut(start..end)
        .ok_or(Status::InvalidMemoryAccess)?;
    dst.copy_from_slice(bytes);
    Ok(())
}

/// Writes a little-endian u32 at `ptr`.
pub(crate) fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, v: u32) -> MemResult<()> {
    write(caller, ptr, &v.to_le_bytes())
}

/// Writes a little-endian u64 at `ptr`.
pub(crate) fn write_u64(caller: &mut Caller<'_, HostState>, ptr: i32, v: u64) -> MemResult<()> {
    write(caller, ptr, &v.to_le_bytes())
}

/// Allocates `size` bytes in the guest through its allocator export.
fn allocate(caller: &mut Caller<'_, HostState>, size: usize) -> MemResult<i32> {
    let alloc = ["malloc", "proxy_on_memory_allocate"]
        .iter()
        .find_map(|name| match caller.get_export(name) {
            Some(Extern::Func(f)) => Some(f),
            _ => None,
        })
        .ok_or(Status::InvalidMemoryAccess)?;
    let size = i32::try_from(size).map_err(|_| Status::InvalidMemoryAccess)?;
    let mut out = [Val::I32(0)];
    alloc
        .call(&mut *caller, &[Val::I32(size)], &mut out)
        .map_err(|_| Status::InvalidMemoryAccess)?;
    match out.first() {
        Some(Val::I32(p)) if *p != 0 => Ok(*p),
        _ => Err(Status::InvalidMemoryAccess),
    }
}

/// Hands `bytes` to the guest: allocates them in guest memory and writes
/// the pointer and size to `ptr_ptr` / `size_ptr`. Empty data is a null
/// pointer and size 0, as cpp-host's `copyToPointerSize` (no allocation).
pub(crate) fn return_bytes(
    caller: &mut Caller<'_, HostState>,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> MemResult<()> {
    let ptr = if bytes.is_empty() {
        0
    } else {
        let p = allocate(caller, bytes.len())?;
        write(caller, p, bytes)?;
        p
    };
    write_u32(caller, ptr_ptr, ptr as u32)?;
    let size = u32::try_from(bytes.len()).map_err(|_| Status::InvalidMemoryAccess)?;
    write_u32(caller, size_ptr, size)
}
