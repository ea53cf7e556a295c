//! The WASI preview1 functions, as Envoy's host provides them: stdout and
//! stderr go to the host log, the clock is the host clock, randomness is
//! deterministic here (so work counts repeat), and the file system is
//! absent. Every other function Envoy registers answers `ENOSYS`.

use crate::memory;
use crate::state::HostState;
use crate::types::{LogLevel, LogRecord};
use wasmtime::{Caller, FuncType, Linker, Val, ValType};

const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;
const ENOENT: i32 = 44;
const ENOSYS: i32 = 52;

fn errno<T>(r: Result<T, crate::state::Status>) -> i32 {
    match r {
        Ok(_) => ESUCCESS,
        Err(_) => EINVAL,
    }
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// `fd_write(fd, iovs, iovs_len, nwritten)`: fd 1 is Envoy's info log,
/// fd 2 its error log (kept apart from the plugin's `proxy_log` lines).
fn fd_write(caller: &mut Caller<'_, HostState>, fd: i32, iovs: i32, n: i32, nwritten: i32) -> i32 {
    caller.data_mut().hostcalls.push("fd_write");
    if fd != 1 && fd != 2 {
        return EBADF;
    }
    let Ok(table) = memory::read(caller, iovs, n.saturating_mul(8)) else {
        return EINVAL;
    };
    let mut text = Vec::new();
    for i in 0..usize::try_from(n).unwrap_or(0) {
        let (Some(ptr), Some(len)) = (le_u32(&table, i * 8), le_u32(&table, i * 8 + 4)) else {
            return EINVAL;
        };
        match memory::read(caller, ptr as i32, len as i32) {
            Ok(b) => text.extend_from_slice(&b),
            Err(_) => return EINVAL,
        }
    }
    let written = u32::try_from(text.len()).unwrap_or(u32::MAX);
    let line = String::from_utf8_lossy(&text);
    let line = line.strip_suffix('\n').unwrap_or(&line).to_owned();
    let level = if fd == 1 {
        LogLevel::Info
    } else {
        LogLevel::Error
    };
    caller.data_mut().stdio.push(LogRecord {
        level,
        message: line,
    });
    errno(memory::write_u32(caller, nwritten, written))
}

/// Registers every WASI name the module imports from `module` (only names
/// Envoy offers get here: the load check ran first).
pub(crate) fn define(
    linker: &mut Linker<HostState>,
    module: &wasmtime::Module,
) -> wasmtime::Result<()> {
    let mut defined = std::collections::BTreeSet::new();
    for import in module.imports() {
        let ns = import.module();
        if ns != "wasi_snapshot_preview1" && ns != "wasi_unstable" {
            continue;
        }
        // A module may import the same function twice (Go does).
        if !defined.insert((ns.to_owned(), import.name().to_owned())) {
            continue;
        }
        let Some(ty) = import.ty().func().cloned() else {
            continue;
        };
        define_one(linker, ns, import.name(), ty)?;
    }
    Ok(())
}

fn arg(params: &[Val], i: usize) -> i32 {
    match params.get(i) {
        Some(Val::I32(v)) => *v,
        Some(Val::I64(v)) => *v as i32,
        _ => 0,
    }
}

fn define_one(
    linker: &mut Linker<HostState>,
    ns: &str,
    name: &str,
    ty: FuncType,
) -> wasmtime::Result<()> {
    let owned = name.to_owned();
    let returns_i32 = ty
        .results()
        .next()
        .is_some_and(|t| matches!(t, ValType::I32));
    linker.func_new(ns, name, ty, move |mut caller, params, results| {
        let code = call(&mut caller, &owned, params);
        if returns_i32 {
            if let Some(slot) = results.first_mut() {
                *slot = Val::I32(code);
            }
        }
        Ok(())
    })?;
    Ok(())
}

fn call(caller: &mut Caller<'_, HostState>, name: &str, p: &[Val]) -> i32 {
    match name {
        "fd_write" => fd_write(caller, arg(p, 0), arg(p, 1), arg(p, 2), arg(p, 3)),
        "clock_time_get" => {
            caller.data_mut().hostcalls.push("clock_time_get");
            let id = arg(p, 0);
            if id != 0 && id != 1 {
                return ENOSYS;
            }
            let now = if caller.data().settings.wasi_real_time {
                real_time_nanos(id)
            } else {
                caller.data().now_nanos
            };
            errno(memory::write_u64(caller, arg(p, 2), now))
        }
        "clock_res_get" => errno(memory::write_u64(caller, arg(p, 1), 1)),
        "random_get" => {
            caller.data_mut().hostcalls.push("random_get");
            let n = usize::try_from(arg(p, 1) as u32).unwrap_or(0);
            let bytes = caller.data_mut().random_bytes(n);
            errno(memory::write(caller, arg(p, 0), &bytes))
        }
        "environ_sizes_get" | "args_sizes_get" => {
            let (count, size) = if name == "environ_sizes_get" {
                let env = &caller.data().settings.env;
                let size: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
                (env.len(), size)
            } else {
                (0, 0)
            };
            let r = memory::write_u32(caller, arg(p, 0), count as u32)
                .and_then(|_| memory::write_u32(caller, arg(p, 1), size as u32));
            errno(r)
        }
        "environ_get" => {
            let env = caller.data().settings.env.clone();
            let (mut ptrs, mut buf) = (arg(p, 0), arg(p, 1));
            for (k, v) in env {
                let entry = format!("{k}={v}\0");
                if memory::write_u32(caller, ptrs, buf as u32).is_err()
                    || memory::write(caller, buf, entry.as_bytes()).is_err()
                {
                    return EINVAL;
                }
                ptrs = ptrs.wrapping_add(4);
                buf = buf.wrapping_add(entry.len() as i32);
            }
            ESUCCESS
        }
        "args_get" | "sched_yield" => ESUCCESS,
        "poll_oneoff" => errno(memory::write_u32(caller, arg(p, 3), 0)),
        "proc_exit" => {
            let code = arg(p, 0);
            caller.data_mut().stdio.push(LogRecord {
                level: LogLevel::Info,
                message: format!("wasi proc_exit({code})"),
            });
            ESUCCESS
        }
        "fd_fdstat_get" => {
            let fd = arg(p, 0);
            if !(0..=2).contains(&fd) {
                return EBADF;
            }
            // filetype character device (2), no flags, all rights.
            let mut stat = [0u8; 24];
            if let Some(b) = stat.get_mut(0) {
                *b = 2;
            }
            if let Some(r) = stat.get_mut(8..16) {
                r.copy_from_slice(&u64::MAX.to_le_bytes());
            }
            errno(memory::write(caller, arg(p, 1), &stat))
        }
        "fd_prestat_get" | "fd_prestat_dir_name" | "fd_close" | "fd_seek" | "fd_tell" => EBADF,
        "path_open" | "path_filestat_get" => ENOENT,
        _ => ENOSYS,
    }
}

/// The real clock for WASI: wall time for `CLOCK_REALTIME` (0), time since
/// the first call in this process for `CLOCK_MONOTONIC` (1).
fn real_time_nanos(id: i32) -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let nanos = if id == 0 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    } else {
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_nanos()
    };
    u64::try_from(nanos).unwrap_or(u64::MAX)
}
