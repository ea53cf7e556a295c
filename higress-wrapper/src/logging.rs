//! Logging that a client or an outage cannot turn into a flood.
//!
//! * [`Truncated`] shows a client-controlled value (a header, a body, a
//!   Redis value) cut to a maximum length, with its full length, so that a
//!   60 KB header or a 20 MB value costs the gateway log a few dozen bytes:
//!
//!   ```
//!   use higress_wrapper::logging::Truncated;
//!
//!   let user = "a".repeat(60_000);
//!   let shown = Truncated::new(&user, 8).to_string();
//!   assert_eq!(shown, "aaaaaaaa... (60000 bytes)");
//!   // Short values are shown whole; control bytes are escaped.
//!   assert_eq!(Truncated::new("alice\u{1b}[2J", 64).to_string(), "alice\\x1b[2J");
//!   ```
//!
//! * [`failure`] and [`recovered`] log repeated failures of one source (a
//!   Redis cluster, an auth service) at most [`LINES_PER_SECOND`] times per
//!   second per cause, with a periodic `suppressed N similar` line; the first
//!   occurrence and the recovery are always logged. The SDK uses them for
//!   its own failure lines (Redis client initialization, hook failures), so
//!   an outage costs a few lines per second instead of one per request:
//!
//!   ```
//!   use higress_wrapper::logging;
//!
//!   fn on_auth_result(ok: bool, status: u16) {
//!       if ok {
//!           // Cheap when nothing failed; logs "... recovered ..." once after failures.
//!           logging::recovered("auth service");
//!       } else {
//!           logging::failure(
//!               log::Level::Warn,
//!               "auth service",
//!               format_args!("auth service answered {status}; denying"),
//!           );
//!       }
//!   }
//!   # let _ = on_auth_result;
//!   ```
//!
//! The limits are per worker (each Envoy worker runs its own copy of the
//! plugin) and use the host's clock.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

/// A byte string shown at most `max` bytes long, then `... (N bytes)`.
///
/// Control characters are shown as `\xNN` (so a value cannot forge log
/// lines or send terminal escapes), invalid UTF-8 as U+FFFD (as
/// [`HeaderValue`](crate::HeaderValue)'s `Display` does). The cut never
/// splits a UTF-8 character.
#[derive(Debug, Clone, Copy)]
pub struct Truncated<'a> {
    bytes: &'a [u8],
    max: usize,
}

/// The length [`Truncated::short`] keeps: enough for an id or a token
/// prefix, small enough for every request's log line.
pub const SHORT: usize = 64;

impl<'a> Truncated<'a> {
    /// `value`, shown at most `max` bytes long.
    pub fn new<T: AsRef<[u8]> + ?Sized>(value: &'a T, max: usize) -> Self {
        Truncated {
            bytes: value.as_ref(),
            max,
        }
    }

    /// `value`, shown at most [`SHORT`] (64) bytes long.
    pub fn short<T: AsRef<[u8]> + ?Sized>(value: &'a T) -> Self {
        Truncated::new(value, SHORT)
    }

    /// The full length of the value in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether the value is longer than what is shown.
    pub fn is_cut(&self) -> bool {
        self.bytes.len() > self.max
    }
}

/// The largest `n <= max` that does not split a UTF-8 character of `bytes`.
fn char_boundary(bytes: &[u8], max: usize) -> usize {
    let mut cut = max.min(bytes.len());
    // At most three continuation bytes precede a boundary in valid UTF-8.
    for _ in 0..3 {
        match bytes.get(cut) {
            Some(b) if b & 0b1100_0000 == 0b1000_0000 && cut > 0 => cut -= 1,
            _ => break,
        }
    }
    cut
}

fn write_escaped(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                // Control characters are U+0000-001F and U+007F-009F.
                write!(f, "\\x{:02x}", u32::from(c))?;
            } else {
                f.write_char(c)?;
            }
        }
        if !chunk.invalid().is_empty() {
            f.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    Ok(())
}

impl fmt::Display for Truncated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.is_cut() {
            return write_escaped(f, self.bytes);
        }
        let cut = char_boundary(self.bytes, self.max);
        write_escaped(f, self.bytes.get(..cut).unwrap_or_default())?;
        write!(f, "... ({} bytes)", self.bytes.len())
    }
}

/// How many lines one cause may log per second (per worker).
pub const LINES_PER_SECOND: u32 = 3;

/// A window of the limiter, in host milliseconds.
const WINDOW_MS: u64 = 1000;

/// A source counts as recovered only when its last failure is at least this
/// old: a success in between failures (other traffic while the outage goes
/// on) must not end the outage and make every failure a "first" again.
const QUIET_MS: u64 = 1000;

/// Causes tracked per source; more distinct messages share one bucket.
const CAUSES_PER_SOURCE: usize = 8;

/// Causes tracked in all (per worker).
const MAX_ENTRIES: usize = 64;

/// The bucket of a source's causes beyond [`CAUSES_PER_SOURCE`] (a real
/// message hashing to 0 merely shares it).
const OTHER_CAUSES: u64 = 0;

/// One cause of one source. Sources and causes are kept as 64-bit FNV-1a
/// hashes: no strings are stored, copied or compared.
#[derive(Debug)]
struct Entry {
    source: u64,
    cause: u64,
    level: log::Level,
    /// When the first failure of this outage was seen.
    first_ms: u64,
    /// When the latest failure was seen.
    last_ms: u64,
    /// Start of the current window.
    window_ms: u64,
    /// Lines logged in the current window.
    logged: u32,
    /// Lines suppressed since the last line logged.
    suppressed: u64,
    /// Failures since the first.
    failures: u64,
}

thread_local! {
    static ENTRIES: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

fn now_ms() -> u64 {
    crate::host::current_time_nanos().map_or(0, |n| n / 1_000_000)
}

/// FNV-1a over what is written to it: a message is hashed as it is
/// formatted, without building a string.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(())
    }
}

fn hash_str(s: &str) -> u64 {
    let mut h = Fnv::new();
    let _ = h.write_str(s);
    h.0
}

/// What to do with one failure line.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Log it, after a `suppressed` line if this many were held back.
    Log {
        suppressed_before: u64,
    },
    Suppress,
}

/// Logs a failure of `source` (e.g. `redis cluster outbound|6379||redis.static`)
/// at `level`, unless the same message was already logged
/// [`LINES_PER_SECOND`] times this second.
///
/// The message is the cause: identical messages count together. The first
/// failure of a cause is always logged. When a cause logs again after
/// suppressed lines, a line `<source>: suppressed N similar lines: ...`
/// comes first. Call [`recovered`] when the source works again.
pub fn failure(level: log::Level, source: &str, message: fmt::Arguments<'_>) {
    let mut cause = Fnv::new();
    let _ = cause.write_fmt(message);
    let now = now_ms();
    let decision = ENTRIES
        .try_with(|entries| {
            let mut entries = entries.try_borrow_mut().ok()?;
            Some(decide(&mut entries, level, hash_str(source), cause.0, now))
        })
        .ok()
        .flatten();
    match decision {
        // Not trackable (re-entered while logging): log it, never lose it.
        None => log::log!(level, "{message}"),
        Some(Decision::Suppress) => {}
        Some(Decision::Log { suppressed_before }) => {
            if suppressed_before > 0 {
                log::log!(
                    level,
                    "{source}: suppressed {suppressed_before} similar lines: {message}"
                );
            }
            log::log!(level, "{message}");
        }
    }
}

fn decide(
    entries: &mut Vec<Entry>,
    level: log::Level,
    source: u64,
    cause: u64,
    now: u64,
) -> Decision {
    let find = |entries: &[Entry], cause: u64| {
        entries
            .iter()
            .position(|e| e.source == source && e.cause == cause)
    };
    let index = match find(entries, cause) {
        Some(i) => i,
        None => {
            let of_source = entries.iter().filter(|e| e.source == source).count();
            let cause = if of_source >= CAUSES_PER_SOURCE || entries.len() >= MAX_ENTRIES {
                OTHER_CAUSES
            } else {
                cause
            };
            match find(entries, cause) {
                Some(i) => i,
                None if entries.len() < MAX_ENTRIES + CAUSES_PER_SOURCE => {
                    entries.push(Entry {
                        source,
                        cause,
                        level,
                        first_ms: now,
                        last_ms: now,
                        window_ms: now,
                        logged: 1,
                        suppressed: 0,
                        failures: 1,
                    });
                    // The first occurrence is always logged.
                    return Decision::Log {
                        suppressed_before: 0,
                    };
                }
                // The table is full of other sources' causes: memory stays
                // bounded, at the price of this line.
                None => return Decision::Suppress,
            }
        }
    };
    let Some(entry) = entries.get_mut(index) else {
        return Decision::Suppress;
    };
    entry.failures += 1;
    entry.last_ms = now;
    // `log::Level` orders Error first: the most severe level wins.
    entry.level = entry.level.min(level);
    if now.saturating_sub(entry.window_ms) >= WINDOW_MS {
        entry.window_ms = now;
        entry.logged = 0;
    }
    if entry.logged < LINES_PER_SECOND {
        entry.logged += 1;
        Decision::Log {
            suppressed_before: std::mem::take(&mut entry.suppressed),
        }
    } else {
        entry.suppressed += 1;
        Decision::Suppress
    }
}

/// What ended when a source recovered.
#[derive(Debug, Clone, Copy)]
struct Ended {
    level: log::Level,
    failures: u64,
    suppressed: u64,
    over_ms: u64,
}

/// Removes `source`'s entries if its last failure is at least [`QUIET_MS`]
/// old, and sums them up.
fn end(entries: &mut Vec<Entry>, source: u64, now: u64) -> Option<Ended> {
    let mut ended: Option<Ended> = None;
    for e in entries.iter().filter(|e| e.source == source) {
        if now.saturating_sub(e.last_ms) < QUIET_MS {
            return None;
        }
        let so_far = ended.get_or_insert(Ended {
            level: e.level,
            failures: 0,
            suppressed: 0,
            over_ms: 0,
        });
        so_far.level = so_far.level.min(e.level);
        so_far.failures += e.failures;
        so_far.suppressed += e.suppressed;
        so_far.over_ms = so_far.over_ms.max(now.saturating_sub(e.first_ms));
    }
    if ended.is_some() {
        entries.retain(|e| e.source != source);
    }
    ended
}

/// Marks `source` as working. If it had failures, and the last one is at
/// least a second old, logs one line — `<source> recovered after N
/// failures in M ms (K lines suppressed since the last one logged)` — at
/// the level of those failures, and forgets them. Cheap when nothing
/// failed: call it on every success.
pub fn recovered(source: &str) {
    let ended = ENTRIES
        .try_with(|entries| {
            let mut entries = entries.try_borrow_mut().ok()?;
            if entries.is_empty() {
                return None;
            }
            end(&mut entries, hash_str(source), now_ms())
        })
        .ok()
        .flatten();
    if let Some(e) = ended {
        log::log!(
            e.level,
            "{source} recovered after {} failures in {} ms ({} lines suppressed since the last one logged)",
            e.failures,
            e.over_ms,
            e.suppressed
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_characters_whole_and_shows_the_length() {
        assert_eq!(Truncated::new("abc", 3).to_string(), "abc");
        assert_eq!(Truncated::new("abcd", 3).to_string(), "abc... (4 bytes)");
        // "é" is two bytes: a cut inside it backs off to before it.
        assert_eq!(Truncated::new("aé", 2).to_string(), "a... (3 bytes)");
        assert_eq!(Truncated::new("", 0).to_string(), "");
        assert_eq!(Truncated::new("x", 0).to_string(), "... (1 bytes)");
        assert_eq!(
            Truncated::new(&b"a\nb\xff"[..], 10).to_string(),
            "a\\x0ab\u{fffd}"
        );
        let t = Truncated::short(&[b'x'; 1000][..]);
        assert!(t.is_cut());
        assert_eq!(t.len(), 1000);
        assert_eq!(t.to_string().len(), SHORT + "... (1000 bytes)".len());
    }

    fn run(entries: &mut Vec<Entry>, cause: &str, now: u64) -> Option<u64> {
        match decide(entries, log::Level::Error, 7, hash_str(cause), now) {
            Decision::Log { suppressed_before } => Some(suppressed_before),
            Decision::Suppress => None,
        }
    }

    #[test]
    fn a_cause_logs_a_few_lines_per_second_then_counts() {
        let mut entries = Vec::new();
        let logged: Vec<_> = (0..100)
            .filter_map(|_| run(&mut entries, "down", 10))
            .collect();
        assert_eq!(logged, vec![0; LINES_PER_SECOND as usize]);
        // Another cause of the same source is not held back by the first.
        assert_eq!(run(&mut entries, "other", 10), Some(0));
        // A second later: the suppressed count comes with the next line.
        assert_eq!(
            run(&mut entries, "down", 1010),
            Some(100 - u64::from(LINES_PER_SECOND))
        );
        assert_eq!(run(&mut entries, "down", 1011), Some(0));
    }

    #[test]
    fn distinct_causes_beyond_the_limit_share_a_bucket() {
        let mut entries = Vec::new();
        let logged = (0..1000)
            .filter(|i| run(&mut entries, &format!("cause {i}"), 5).is_some())
            .count();
        assert_eq!(logged, CAUSES_PER_SOURCE + LINES_PER_SECOND as usize);
        assert!(entries.len() <= CAUSES_PER_SOURCE + 1);
    }

    #[test]
    fn a_recovery_needs_a_quiet_second_and_sums_the_causes() {
        let mut entries = Vec::new();
        for _ in 0..10 {
            run(&mut entries, "a", 100);
            run(&mut entries, "b", 100);
        }
        // A success between failures is not a recovery.
        assert!(end(&mut entries, 7, 600).is_none());
        assert_eq!(entries.len(), 2);
        let ended = end(&mut entries, 7, 1100).map(|e| (e.failures, e.suppressed, e.over_ms));
        assert_eq!(
            ended,
            Some((20, 2 * (10 - u64::from(LINES_PER_SECOND)), 1000))
        );
        assert!(entries.is_empty());
        assert!(end(&mut entries, 7, 5000).is_none());
    }
}
