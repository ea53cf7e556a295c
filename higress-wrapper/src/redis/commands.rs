//! Every command of the Go wrapper's `RedisClient` (go-wrapper.md §4.1),
//! typed, plus what Go lacks: binary-safe arguments, TTL/PTTL/PEXPIRE,
//! GETDEL, EVALSHA with script caching, PUBLISH, SCAN.
//!
//! Keys and values take anything that implements [`ToArg`]: text, bytes,
//! integers and floats. Bytes are sent as they are (Go turns `[]byte` into
//! `"[97 98 99]"`).

use super::resp::{CommandBuilder, FromValue, Value};
use super::{RedisClient, RedisError, RedisFuture, Script};

/// A command argument.
pub trait ToArg {
    /// Appends the argument to a command.
    fn write_to(&self, command: &mut CommandBuilder);
}

impl ToArg for str {
    fn write_to(&self, c: &mut CommandBuilder) {
        c.arg(self);
    }
}
impl ToArg for String {
    fn write_to(&self, c: &mut CommandBuilder) {
        c.arg(self);
    }
}
impl ToArg for [u8] {
    fn write_to(&self, c: &mut CommandBuilder) {
        c.arg(self);
    }
}
impl<const N: usize> ToArg for [u8; N] {
    fn write_to(&self, c: &mut CommandBuilder) {
        c.arg(self);
    }
}
impl ToArg for Vec<u8> {
    fn write_to(&self, c: &mut CommandBuilder) {
        c.arg(self);
    }
}
impl ToArg for i64 {
    fn write_to(&self, c: &mut CommandBuilder) {
        c.arg_int(*self);
    }
}
impl ToArg for i32 {
    fn write_to(&self, c: &mut CommandBuilder) {
        c.arg_int(i64::from(*self));
    }
}
impl ToArg for u32 {
    fn write_to(&self, c: &mut CommandBuilder) {
        c.arg_int(i64::from(*self));
    }
}
impl ToArg for u64 {
    fn write_to(&self, c: &mut CommandBuilder) {
        match i64::try_from(*self) {
            Ok(n) => c.arg_int(n),
            Err(_) => c.arg(self.to_string()),
        };
    }
}
impl ToArg for usize {
    fn write_to(&self, c: &mut CommandBuilder) {
        (*self as u64).write_to(c);
    }
}
impl ToArg for f64 {
    fn write_to(&self, c: &mut CommandBuilder) {
        c.arg_float(*self);
    }
}
impl<T: ToArg + ?Sized> ToArg for &T {
    fn write_to(&self, c: &mut CommandBuilder) {
        (**self).write_to(c);
    }
}

fn conv<T: FromValue>(v: Value) -> Result<T, RedisError> {
    T::from_value(v).map_err(RedisError::from)
}

fn was_set(v: Value) -> Result<bool, RedisError> {
    match v {
        Value::Nil => Ok(false),
        other => conv::<()>(other).map(|()| true),
    }
}

/// `(next cursor, keys)` of a `SCAN`.
fn scan_page(v: Value) -> Result<(u64, Vec<Vec<u8>>), RedisError> {
    let (cursor, keys): (String, Vec<Vec<u8>>) = conv(v)?;
    let cursor = cursor.parse().map_err(|_| {
        RedisError::Type(super::FromValueError::Unexpected {
            expected: "a numeric cursor",
            found: "text".to_owned(),
        })
    })?;
    Ok((cursor, keys))
}

struct Cmd(CommandBuilder);

impl Cmd {
    fn new(name: &str) -> Cmd {
        let mut b = CommandBuilder::new();
        b.arg(name);
        Cmd(b)
    }
    fn a(mut self, arg: impl ToArg) -> Cmd {
        arg.write_to(&mut self.0);
        self
    }
    fn all<A: ToArg>(mut self, args: &[A]) -> Cmd {
        for a in args {
            a.write_to(&mut self.0);
        }
        self
    }
    fn pairs<A: ToArg, B: ToArg>(mut self, pairs: &[(A, B)]) -> Cmd {
        for (a, b) in pairs {
            a.write_to(&mut self.0);
            b.write_to(&mut self.0);
        }
        self
    }
    fn bytes(mut self) -> Vec<u8> {
        self.0.finish()
    }
}

type Bytes = Vec<u8>;

impl RedisClient {
    fn run<T: FromValue>(&self, cmd: Cmd) -> RedisFuture<T> {
        self.send(cmd.bytes(), conv::<T>)
    }

    // ----- scripts ------------------------------------------------------------

    /// `EVAL script numkeys keys... args...`
    pub fn eval(
        &self,
        script: &str,
        keys: &[impl ToArg],
        args: &[impl ToArg],
    ) -> RedisFuture<Value> {
        self.run(Cmd::new("EVAL").a(script).a(keys.len()).all(keys).all(args))
    }

    /// `EVALSHA` of a prepared [`Script`], falling back to `EVAL` (which
    /// caches it on the server) when the server answers `NOSCRIPT`.
    pub fn eval_script(
        &self,
        script: &Script,
        keys: &[impl ToArg],
        args: &[impl ToArg],
    ) -> RedisFuture<Value> {
        let eval = Cmd::new("EVAL")
            .a(script.source())
            .a(keys.len())
            .all(keys)
            .all(args)
            .bytes();
        self.run::<Value>(
            Cmd::new("EVALSHA")
                .a(script.sha1())
                .a(keys.len())
                .all(keys)
                .all(args),
        )
        .with_fallback(eval)
    }

    // ----- keys ---------------------------------------------------------------

    /// `DEL key`: how many keys were removed.
    pub fn del(&self, key: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("DEL").a(key))
    }
    /// `EXISTS key`.
    pub fn exists(&self, key: impl ToArg) -> RedisFuture<bool> {
        self.run(Cmd::new("EXISTS").a(key))
    }
    /// `EXPIRE key seconds`: whether the timeout was set.
    pub fn expire(&self, key: impl ToArg, seconds: i64) -> RedisFuture<bool> {
        self.run(Cmd::new("EXPIRE").a(key).a(seconds))
    }
    /// `PEXPIRE key milliseconds`.
    pub fn pexpire(&self, key: impl ToArg, millis: i64) -> RedisFuture<bool> {
        self.run(Cmd::new("PEXPIRE").a(key).a(millis))
    }
    /// `PERSIST key`: whether a timeout was removed.
    pub fn persist(&self, key: impl ToArg) -> RedisFuture<bool> {
        self.run(Cmd::new("PERSIST").a(key))
    }
    /// `TTL key`: seconds left, `-1` without timeout, `-2` if missing.
    pub fn ttl(&self, key: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("TTL").a(key))
    }
    /// `PTTL key`: milliseconds left.
    pub fn pttl(&self, key: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("PTTL").a(key))
    }
    /// `SCAN cursor [MATCH pattern] [COUNT n]`: the next cursor (0 when
    /// done) and a page of keys.
    pub fn scan(
        &self,
        cursor: u64,
        pattern: Option<&str>,
        count: Option<u32>,
    ) -> RedisFuture<(u64, Vec<Bytes>)> {
        let mut cmd = Cmd::new("SCAN").a(cursor);
        if let Some(p) = pattern {
            cmd = cmd.a("MATCH").a(p);
        }
        if let Some(n) = count {
            cmd = cmd.a("COUNT").a(n);
        }
        self.send(cmd.bytes(), scan_page)
    }
    /// `PUBLISH channel message`: how many subscribers got it.
    pub fn publish(&self, channel: impl ToArg, message: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("PUBLISH").a(channel).a(message))
    }

    // ----- strings ------------------------------------------------------------

    /// `GET key`.
    pub fn get(&self, key: impl ToArg) -> RedisFuture<Option<Bytes>> {
        self.run(Cmd::new("GET").a(key))
    }
    /// `GETDEL key`.
    pub fn getdel(&self, key: impl ToArg) -> RedisFuture<Option<Bytes>> {
        self.run(Cmd::new("GETDEL").a(key))
    }
    /// `SET key value`.
    pub fn set(&self, key: impl ToArg, value: impl ToArg) -> RedisFuture<()> {
        self.run(Cmd::new("SET").a(key).a(value))
    }
    /// `SET key value EX seconds` (Go's `SetEx`).
    pub fn set_ex(&self, key: impl ToArg, value: impl ToArg, seconds: i64) -> RedisFuture<()> {
        self.run(Cmd::new("SET").a(key).a(value).a("EX").a(seconds))
    }
    /// `SET key value NX [EX seconds]` (Go's `SetNX`; no expiry when
    /// `seconds` is 0): whether the key was set.
    pub fn set_nx(&self, key: impl ToArg, value: impl ToArg, seconds: i64) -> RedisFuture<bool> {
        let mut cmd = Cmd::new("SET").a(key).a(value).a("NX");
        if seconds > 0 {
            cmd = cmd.a("EX").a(seconds);
        }
        self.send(cmd.bytes(), was_set)
    }
    /// `MGET key...`.
    pub fn mget(&self, keys: &[impl ToArg]) -> RedisFuture<Vec<Option<Bytes>>> {
        self.run(Cmd::new("MGET").all(keys))
    }
    /// `MSET key value ...` (in the order given; Go's map order is random).
    pub fn mset(&self, pairs: &[(impl ToArg, impl ToArg)]) -> RedisFuture<()> {
        self.run(Cmd::new("MSET").pairs(pairs))
    }
    /// `INCR key`.
    pub fn incr(&self, key: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("INCR").a(key))
    }
    /// `DECR key`.
    pub fn decr(&self, key: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("DECR").a(key))
    }
    /// `INCRBY key delta`.
    pub fn incr_by(&self, key: impl ToArg, delta: i64) -> RedisFuture<i64> {
        self.run(Cmd::new("INCRBY").a(key).a(delta))
    }
    /// `DECRBY key delta`.
    pub fn decr_by(&self, key: impl ToArg, delta: i64) -> RedisFuture<i64> {
        self.run(Cmd::new("DECRBY").a(key).a(delta))
    }

    // ----- lists --------------------------------------------------------------

    /// `LLEN key`.
    pub fn llen(&self, key: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("LLEN").a(key))
    }
    /// `RPUSH key value...`: the new length.
    pub fn rpush(&self, key: impl ToArg, values: &[impl ToArg]) -> RedisFuture<i64> {
        self.run(Cmd::new("RPUSH").a(key).all(values))
    }
    /// `RPOP key`.
    pub fn rpop(&self, key: impl ToArg) -> RedisFuture<Option<Bytes>> {
        self.run(Cmd::new("RPOP").a(key))
    }
    /// `LPUSH key value...`: the new length.
    pub fn lpush(&self, key: impl ToArg, values: &[impl ToArg]) -> RedisFuture<i64> {
        self.run(Cmd::new("LPUSH").a(key).all(values))
    }
    /// `LPOP key`.
    pub fn lpop(&self, key: impl ToArg) -> RedisFuture<Option<Bytes>> {
        self.run(Cmd::new("LPOP").a(key))
    }
    /// `LINDEX key index`.
    pub fn lindex(&self, key: impl ToArg, index: i64) -> RedisFuture<Option<Bytes>> {
        self.run(Cmd::new("LINDEX").a(key).a(index))
    }
    /// `LRANGE key start stop`.
    pub fn lrange(&self, key: impl ToArg, start: i64, stop: i64) -> RedisFuture<Vec<Bytes>> {
        self.run(Cmd::new("LRANGE").a(key).a(start).a(stop))
    }
    /// `LREM key count value`: how many were removed.
    pub fn lrem(&self, key: impl ToArg, count: i64, value: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("LREM").a(key).a(count).a(value))
    }
    /// `LINSERT key BEFORE pivot value`: the new length, `-1` if no pivot.
    pub fn linsert_before(
        &self,
        key: impl ToArg,
        pivot: impl ToArg,
        value: impl ToArg,
    ) -> RedisFuture<i64> {
        self.run(Cmd::new("LINSERT").a(key).a("BEFORE").a(pivot).a(value))
    }
    /// `LINSERT key AFTER pivot value`.
    pub fn linsert_after(
        &self,
        key: impl ToArg,
        pivot: impl ToArg,
        value: impl ToArg,
    ) -> RedisFuture<i64> {
        self.run(Cmd::new("LINSERT").a(key).a("AFTER").a(pivot).a(value))
    }

    // ----- hashes -------------------------------------------------------------

    /// `HEXISTS key field`.
    pub fn hexists(&self, key: impl ToArg, field: impl ToArg) -> RedisFuture<bool> {
        self.run(Cmd::new("HEXISTS").a(key).a(field))
    }
    /// `HDEL key field...`: how many were removed.
    pub fn hdel(&self, key: impl ToArg, fields: &[impl ToArg]) -> RedisFuture<i64> {
        self.run(Cmd::new("HDEL").a(key).all(fields))
    }
    /// `HLEN key`.
    pub fn hlen(&self, key: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("HLEN").a(key))
    }
    /// `HGET key field`.
    pub fn hget(&self, key: impl ToArg, field: impl ToArg) -> RedisFuture<Option<Bytes>> {
        self.run(Cmd::new("HGET").a(key).a(field))
    }
    /// `HSET key field value`: how many fields were added.
    pub fn hset(&self, key: impl ToArg, field: impl ToArg, value: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("HSET").a(key).a(field).a(value))
    }
    /// `HMGET key field...`.
    pub fn hmget(&self, key: impl ToArg, fields: &[impl ToArg]) -> RedisFuture<Vec<Option<Bytes>>> {
        self.run(Cmd::new("HMGET").a(key).all(fields))
    }
    /// `HMSET key field value ...`.
    pub fn hmset(&self, key: impl ToArg, pairs: &[(impl ToArg, impl ToArg)]) -> RedisFuture<()> {
        self.run(Cmd::new("HMSET").a(key).pairs(pairs))
    }
    /// `HKEYS key`.
    pub fn hkeys(&self, key: impl ToArg) -> RedisFuture<Vec<Bytes>> {
        self.run(Cmd::new("HKEYS").a(key))
    }
    /// `HVALS key`.
    pub fn hvals(&self, key: impl ToArg) -> RedisFuture<Vec<Bytes>> {
        self.run(Cmd::new("HVALS").a(key))
    }
    /// `HGETALL key`: field/value pairs.
    pub fn hgetall(&self, key: impl ToArg) -> RedisFuture<Vec<(Bytes, Bytes)>> {
        self.run(Cmd::new("HGETALL").a(key))
    }
    /// `HINCRBY key field delta`.
    pub fn hincr_by(&self, key: impl ToArg, field: impl ToArg, delta: i64) -> RedisFuture<i64> {
        self.run(Cmd::new("HINCRBY").a(key).a(field).a(delta))
    }
    /// `HINCRBYFLOAT key field delta`.
    pub fn hincr_by_float(
        &self,
        key: impl ToArg,
        field: impl ToArg,
        delta: f64,
    ) -> RedisFuture<f64> {
        self.run(Cmd::new("HINCRBYFLOAT").a(key).a(field).a(delta))
    }

    // ----- sets ---------------------------------------------------------------

    /// `SCARD key`.
    pub fn scard(&self, key: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("SCARD").a(key))
    }
    /// `SADD key member...`: how many were added.
    pub fn sadd(&self, key: impl ToArg, members: &[impl ToArg]) -> RedisFuture<i64> {
        self.run(Cmd::new("SADD").a(key).all(members))
    }
    /// `SREM key member...`: how many were removed.
    pub fn srem(&self, key: impl ToArg, members: &[impl ToArg]) -> RedisFuture<i64> {
        self.run(Cmd::new("SREM").a(key).all(members))
    }
    /// `SISMEMBER key member`.
    pub fn sismember(&self, key: impl ToArg, member: impl ToArg) -> RedisFuture<bool> {
        self.run(Cmd::new("SISMEMBER").a(key).a(member))
    }
    /// `SMEMBERS key`.
    pub fn smembers(&self, key: impl ToArg) -> RedisFuture<Vec<Bytes>> {
        self.run(Cmd::new("SMEMBERS").a(key))
    }
    /// `SDIFF key1 key2`.
    pub fn sdiff(&self, key1: impl ToArg, key2: impl ToArg) -> RedisFuture<Vec<Bytes>> {
        self.run(Cmd::new("SDIFF").a(key1).a(key2))
    }
    /// `SDIFFSTORE destination key1 key2`: the size of the result.
    pub fn sdiff_store(
        &self,
        destination: impl ToArg,
        key1: impl ToArg,
        key2: impl ToArg,
    ) -> RedisFuture<i64> {
        self.run(Cmd::new("SDIFFSTORE").a(destination).a(key1).a(key2))
    }
    /// `SINTER key1 key2`.
    pub fn sinter(&self, key1: impl ToArg, key2: impl ToArg) -> RedisFuture<Vec<Bytes>> {
        self.run(Cmd::new("SINTER").a(key1).a(key2))
    }
    /// `SINTERSTORE destination key1 key2`.
    pub fn sinter_store(
        &self,
        destination: impl ToArg,
        key1: impl ToArg,
        key2: impl ToArg,
    ) -> RedisFuture<i64> {
        self.run(Cmd::new("SINTERSTORE").a(destination).a(key1).a(key2))
    }
    /// `SUNION key1 key2`.
    pub fn sunion(&self, key1: impl ToArg, key2: impl ToArg) -> RedisFuture<Vec<Bytes>> {
        self.run(Cmd::new("SUNION").a(key1).a(key2))
    }
    /// `SUNIONSTORE destination key1 key2`.
    pub fn sunion_store(
        &self,
        destination: impl ToArg,
        key1: impl ToArg,
        key2: impl ToArg,
    ) -> RedisFuture<i64> {
        self.run(Cmd::new("SUNIONSTORE").a(destination).a(key1).a(key2))
    }

    // ----- sorted sets ----------------------------------------------------------

    /// `ZCARD key`.
    pub fn zcard(&self, key: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("ZCARD").a(key))
    }
    /// `ZADD key score member ...` from `(member, score)` pairs: how many
    /// were added.
    pub fn zadd(&self, key: impl ToArg, members: &[(impl ToArg, f64)]) -> RedisFuture<i64> {
        let mut cmd = Cmd::new("ZADD").a(key);
        for (member, score) in members {
            cmd = cmd.a(*score).a(member);
        }
        self.run(cmd)
    }
    /// `ZCOUNT key min max` (bounds like `1`, `(1`, `-inf`, `+inf`).
    pub fn zcount(&self, key: impl ToArg, min: impl ToArg, max: impl ToArg) -> RedisFuture<i64> {
        self.run(Cmd::new("ZCOUNT").a(key).a(min).a(max))
    }
    /// `ZINCRBY key delta member`: the new score.
    pub fn zincr_by(&self, key: impl ToArg, member: impl ToArg, delta: f64) -> RedisFuture<f64> {
        self.run(Cmd::new("ZINCRBY").a(key).a(delta).a(member))
    }
    /// `ZSCORE key member`.
    pub fn zscore(&self, key: impl ToArg, member: impl ToArg) -> RedisFuture<Option<f64>> {
        self.run(Cmd::new("ZSCORE").a(key).a(member))
    }
    /// `ZRANK key member`.
    pub fn zrank(&self, key: impl ToArg, member: impl ToArg) -> RedisFuture<Option<i64>> {
        self.run(Cmd::new("ZRANK").a(key).a(member))
    }
    /// `ZREVRANK key member`.
    pub fn zrevrank(&self, key: impl ToArg, member: impl ToArg) -> RedisFuture<Option<i64>> {
        self.run(Cmd::new("ZREVRANK").a(key).a(member))
    }
    /// `ZREM key member...`: how many were removed.
    pub fn zrem(&self, key: impl ToArg, members: &[impl ToArg]) -> RedisFuture<i64> {
        self.run(Cmd::new("ZREM").a(key).all(members))
    }
    /// `ZRANGE key start stop`.
    pub fn zrange(&self, key: impl ToArg, start: i64, stop: i64) -> RedisFuture<Vec<Bytes>> {
        self.run(Cmd::new("ZRANGE").a(key).a(start).a(stop))
    }
    /// `ZREVRANGE key start stop`.
    pub fn zrevrange(&self, key: impl ToArg, start: i64, stop: i64) -> RedisFuture<Vec<Bytes>> {
        self.run(Cmd::new("ZREVRANGE").a(key).a(start).a(stop))
    }
}
