//! Random choices (Go's `rand.Intn`): a xorshift generator per VM, seeded
//! from the std hasher's random keys (WASI `random_get`) and the clock.
use std::cell::Cell;
use std::hash::BuildHasher;

thread_local! {
    static STATE: Cell<u64> = const { Cell::new(0) };
}

fn next() -> u64 {
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            x = std::collections::hash_map::RandomState::new().hash_one(nanos) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    })
}

/// A number in `0..n` (0 when `n` is 0).
pub(crate) fn below(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    usize::try_from(next() % n as u64).unwrap_or(0)
}
