//! Every command of the Redis client against a real `redis-server`, through
//! the native test host (which relays each call over its own TCP connection
//! and frames the reply with its own reader, not the SDK's decoder). Each
//! typed result is asserted, and what the server holds is checked with a
//! separate raw client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::redis_server::{RawClient, RedisServer, Resp};
use higress_test_host::{CalloutKind, TestHost};
use higress_wrapper::cluster::FqdnCluster;
use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, RedisError, RedisFuture, Script, Value};
use std::collections::BTreeSet;
use std::time::Duration;

fn no_config(_: &JsonValue) -> Result<(), ConfigError> {
    Ok(())
}

higress_wrapper::set_ctx! {
    name: "redis-commands",
    config: (),
    parse_config: no_config,
}

const CLUSTER: &str = "outbound|6379||redis.static";

struct Fixture {
    client: RedisClient,
    host: TestHost,
    raw: RawClient,
    // Dropped last: the host's connection goes first.
    server: RedisServer,
}

fn fixture() -> Fixture {
    let server = RedisServer::start();
    let host = TestHost::builder()
        .redis_server(CLUSTER, server.addr())
        .start::<Plugin>("{}")
        .unwrap();
    let client = RedisClient::builder(&FqdnCluster::new("redis.static", 6379))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    Fixture {
        raw: server.client(),
        client,
        host,
        server,
    }
}

impl Fixture {
    /// Runs one command to completion through the test host.
    fn run<T: 'static>(&self, command: RedisFuture<T>) -> Result<T, RedisError> {
        self.host.block_on(command)
    }

    fn ok<T: 'static>(&self, command: RedisFuture<T>) -> T {
        match self.run(command) {
            Ok(v) => v,
            Err(e) => panic!(
                "command failed: {e} (host failures: {:?})",
                self.host.redis_failures()
            ),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.host.assert_idle();
            assert!(
                self.host.redis_failures().is_empty(),
                "{:?}",
                self.host.redis_failures()
            );
        }
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn set_of(items: Vec<Vec<u8>>) -> BTreeSet<Vec<u8>> {
    items.into_iter().collect()
}

#[test]
fn strings_and_counters() {
    let mut f = fixture();
    let c = f.client.clone();
    assert_eq!(f.ok(c.get("s:missing")), None);
    f.ok(c.set("s:a", "hello"));
    assert_eq!(f.ok(c.get("s:a")), Some(b("hello")));
    assert_eq!(
        redis_cmd!(f.raw, b"GET", b"s:a"),
        Resp::Bulk(Some(b("hello")))
    );
    // SET key value EX seconds
    f.ok(c.set_ex("s:ex", "v", 100));
    let ttl = f.ok(c.ttl("s:ex"));
    assert!((1..=100).contains(&ttl), "{ttl}");
    // SET NX: only if absent.
    assert!(f.ok(c.set_nx("s:nx", "first", 0)));
    assert!(!f.ok(c.set_nx("s:nx", "second", 0)));
    assert_eq!(f.ok(c.get("s:nx")), Some(b("first")));
    assert!(f.ok(c.set_nx("s:nx-ex", "v", 50)));
    assert!(f.ok(c.ttl("s:nx-ex")) > 0);
    // MSET / MGET in order, with a missing key.
    f.ok(c.mset(&[("s:m1", "1"), ("s:m2", "2")]));
    assert_eq!(
        f.ok(c.mget(&["s:m1", "s:none", "s:m2"])),
        vec![Some(b("1")), None, Some(b("2"))]
    );
    // Counters.
    assert_eq!(f.ok(c.incr("s:n")), 1);
    assert_eq!(f.ok(c.incr_by("s:n", 41)), 42);
    assert_eq!(f.ok(c.decr("s:n")), 41);
    assert_eq!(f.ok(c.decr_by("s:n", 40)), 1);
    assert_eq!(redis_cmd!(f.raw, b"GET", b"s:n"), Resp::Bulk(Some(b("1"))));
    // A Redis error reply is a typed error.
    match f.run(c.incr("s:a")) {
        Err(RedisError::Reply(message)) => assert!(message.contains("not an integer"), "{message}"),
        other => panic!("{other:?}"),
    }
    // GETDEL.
    assert_eq!(f.ok(c.getdel("s:a")), Some(b("hello")));
    assert_eq!(f.ok(c.getdel("s:a")), None);
    assert_eq!(redis_cmd!(f.raw, b"EXISTS", b"s:a"), Resp::Int(0));
    // Integers and floats as values.
    f.ok(c.set("s:int", 7_i64));
    f.ok(c.set("s:float", 1.5_f64));
    assert_eq!(f.ok(c.get("s:int")), Some(b("7")));
    assert_eq!(f.ok(c.get("s:float")), Some(b("1.5")));
}

#[test]
fn binary_keys_and_values_round_trip() {
    let mut f = fixture();
    let c = f.client.clone();
    let key: &[u8] = b"bin:\x00\xff\r\n";
    let value: &[u8] = b"\x00\xff\r\n$3\r\n*1\r\n\x80end";
    f.ok(c.set(key, value));
    assert_eq!(f.ok(c.get(key)), Some(value.to_vec()));
    // The server holds exactly these bytes (checked without the SDK).
    assert_eq!(
        redis_cmd!(f.raw, b"GET", key),
        Resp::Bulk(Some(value.to_vec()))
    );
    assert_eq!(
        redis_cmd!(f.raw, b"STRLEN", key),
        Resp::Int(value.len() as i64)
    );
    // A value written by another client reads back the same.
    let other: &[u8] = b"\xff\xfe\x00";
    redis_cmd!(f.raw, b"HSET", b"bin:h", b"\x00f", other);
    assert_eq!(f.ok(c.hget("bin:h", b"\x00f")), Some(other.to_vec()));
    assert_eq!(f.ok(c.del(key)), 1);
}

#[test]
fn keys_expiry_scan_and_publish() {
    let mut f = fixture();
    let c = f.client.clone();
    f.ok(c.set("k:a", "1"));
    assert!(f.ok(c.exists("k:a")));
    assert!(!f.ok(c.exists("k:none")));
    assert_eq!(f.ok(c.ttl("k:a")), -1);
    assert_eq!(f.ok(c.ttl("k:none")), -2);
    assert!(f.ok(c.expire("k:a", 100)));
    assert!(!f.ok(c.expire("k:none", 100)));
    assert!((1..=100).contains(&f.ok(c.ttl("k:a"))));
    assert!(f.ok(c.pexpire("k:a", 50_000)));
    let pttl = f.ok(c.pttl("k:a"));
    assert!((1..=50_000).contains(&pttl), "{pttl}");
    assert!(f.ok(c.persist("k:a")));
    assert!(!f.ok(c.persist("k:a")));
    assert_eq!(f.ok(c.pttl("k:a")), -1);
    assert_eq!(f.ok(c.del("k:a")), 1);
    assert_eq!(f.ok(c.del("k:a")), 0);

    // SCAN with MATCH and COUNT until the cursor comes back to 0.
    for i in 0..25 {
        redis_cmd!(f.raw, b"SET", format!("scan:{i}").as_bytes(), b"x");
    }
    redis_cmd!(f.raw, b"SET", b"other", b"x");
    let mut seen = BTreeSet::new();
    let mut cursor = 0;
    let mut pages = 0;
    loop {
        let (next, keys) = f.ok(c.scan(cursor, Some("scan:*"), Some(5)));
        seen.extend(keys);
        pages += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
        assert!(pages < 100);
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.iter().all(|k| k.starts_with(b"scan:")));
    assert!(pages > 1);
    let (_, all) = f.ok(c.scan(0, None, Some(1000)));
    assert_eq!(all.len(), 26);

    // PUBLISH: 0 without subscribers, 1 with one (our own connection).
    assert_eq!(f.ok(c.publish("chan", "hi")), 0);
    let mut sub = RawClient::connect(f.server.addr()).unwrap();
    redis_cmd!(sub, "SUBSCRIBE", "chan");
    assert_eq!(f.ok(c.publish("chan", b"\x00bin")), 1);
}

#[test]
fn lists() {
    let mut f = fixture();
    let c = f.client.clone();
    assert_eq!(f.ok(c.rpush("l", &["b", "c"])), 2);
    assert_eq!(f.ok(c.lpush("l", &["a"])), 3);
    assert_eq!(f.ok(c.llen("l")), 3);
    assert_eq!(f.ok(c.lrange("l", 0, -1)), vec![b("a"), b("b"), b("c")]);
    assert_eq!(f.ok(c.lindex("l", 1)), Some(b("b")));
    assert_eq!(f.ok(c.lindex("l", 9)), None);
    assert_eq!(f.ok(c.linsert_before("l", "b", "x")), 4);
    assert_eq!(f.ok(c.linsert_after("l", "b", "y")), 5);
    assert_eq!(f.ok(c.linsert_after("l", "nope", "z")), -1);
    assert_eq!(
        f.ok(c.lrange("l", 0, -1)),
        vec![b("a"), b("x"), b("b"), b("y"), b("c")]
    );
    assert_eq!(f.ok(c.rpush("l", &["x"])), 6);
    assert_eq!(f.ok(c.lrem("l", 0, "x")), 2);
    assert_eq!(f.ok(c.lpop("l")), Some(b("a")));
    assert_eq!(f.ok(c.rpop("l")), Some(b("c")));
    assert_eq!(
        redis_cmd!(f.raw, b"LRANGE", b"l", b"0", b"-1"),
        Resp::Array(Some(vec![
            Resp::Bulk(Some(b("b"))),
            Resp::Bulk(Some(b("y")))
        ]))
    );
    assert_eq!(f.ok(c.lpop("l:none")), None);
    assert_eq!(f.ok(c.rpop("l:none")), None);
    assert_eq!(f.ok(c.lrange("l:none", 0, -1)), Vec::<Vec<u8>>::new());
}

#[test]
fn hashes() {
    let mut f = fixture();
    let c = f.client.clone();
    assert_eq!(f.ok(c.hset("h", "a", "1")), 1);
    assert_eq!(f.ok(c.hset("h", "a", "2")), 0);
    f.ok(c.hmset("h", &[("b", "3"), ("c", "4")]));
    assert!(f.ok(c.hexists("h", "a")));
    assert!(!f.ok(c.hexists("h", "z")));
    assert_eq!(f.ok(c.hget("h", "a")), Some(b("2")));
    assert_eq!(f.ok(c.hget("h", "z")), None);
    assert_eq!(f.ok(c.hlen("h")), 3);
    assert_eq!(
        f.ok(c.hmget("h", &["a", "z", "c"])),
        vec![Some(b("2")), None, Some(b("4"))]
    );
    assert_eq!(
        set_of(f.ok(c.hkeys("h"))),
        set_of(vec![b("a"), b("b"), b("c")])
    );
    assert_eq!(
        set_of(f.ok(c.hvals("h"))),
        set_of(vec![b("2"), b("3"), b("4")])
    );
    let mut all = f.ok(c.hgetall("h"));
    all.sort();
    assert_eq!(
        all,
        vec![(b("a"), b("2")), (b("b"), b("3")), (b("c"), b("4"))]
    );
    assert_eq!(f.ok(c.hincr_by("h", "n", 5)), 5);
    assert_eq!(f.ok(c.hincr_by("h", "n", -6)), -1);
    assert_eq!(f.ok(c.hincr_by_float("h", "fl", 2.5)), 2.5);
    assert_eq!(f.ok(c.hincr_by_float("h", "fl", 0.25)), 2.75);
    assert_eq!(f.ok(c.hdel("h", &["a", "b", "zz"])), 2);
    assert_eq!(
        redis_cmd!(f.raw, b"HGET", b"h", b"n"),
        Resp::Bulk(Some(b("-1")))
    );
    assert_eq!(f.ok(c.hgetall("h:none")), Vec::new());
}

#[test]
fn sets() {
    let mut f = fixture();
    let c = f.client.clone();
    assert_eq!(f.ok(c.sadd("s1", &["a", "b", "c"])), 3);
    assert_eq!(f.ok(c.sadd("s1", &["a"])), 0);
    assert_eq!(f.ok(c.sadd("s2", &["b", "c", "d"])), 3);
    assert_eq!(f.ok(c.scard("s1")), 3);
    assert!(f.ok(c.sismember("s1", "a")));
    assert!(!f.ok(c.sismember("s1", "d")));
    assert_eq!(
        set_of(f.ok(c.smembers("s1"))),
        set_of(vec![b("a"), b("b"), b("c")])
    );
    assert_eq!(set_of(f.ok(c.sdiff("s1", "s2"))), set_of(vec![b("a")]));
    assert_eq!(
        set_of(f.ok(c.sinter("s1", "s2"))),
        set_of(vec![b("b"), b("c")])
    );
    assert_eq!(
        set_of(f.ok(c.sunion("s1", "s2"))),
        set_of(vec![b("a"), b("b"), b("c"), b("d")])
    );
    assert_eq!(f.ok(c.sdiff_store("d", "s1", "s2")), 1);
    assert_eq!(f.ok(c.sinter_store("i", "s1", "s2")), 2);
    assert_eq!(f.ok(c.sunion_store("u", "s1", "s2")), 4);
    assert_eq!(redis_cmd!(f.raw, b"SCARD", b"u"), Resp::Int(4));
    assert_eq!(redis_cmd!(f.raw, b"SISMEMBER", b"d", b"a"), Resp::Int(1));
    assert_eq!(f.ok(c.srem("s1", &["a", "zz"])), 1);
    assert_eq!(f.ok(c.scard("s1")), 2);
}

#[test]
fn sorted_sets() {
    let mut f = fixture();
    let c = f.client.clone();
    assert_eq!(f.ok(c.zadd("z", &[("a", 1.0), ("b", 2.0), ("c", 3.5)])), 3);
    assert_eq!(f.ok(c.zadd("z", &[("a", 1.5)])), 0);
    assert_eq!(f.ok(c.zcard("z")), 3);
    assert_eq!(f.ok(c.zcount("z", "-inf", "+inf")), 3);
    assert_eq!(f.ok(c.zcount("z", "(1.5", 3.5)), 2);
    assert_eq!(f.ok(c.zscore("z", "a")), Some(1.5));
    assert_eq!(f.ok(c.zscore("z", "none")), None);
    assert_eq!(f.ok(c.zincr_by("z", "a", 10.0)), 11.5);
    assert_eq!(f.ok(c.zrank("z", "b")), Some(0));
    assert_eq!(f.ok(c.zrevrank("z", "b")), Some(2));
    assert_eq!(f.ok(c.zrank("z", "none")), None);
    assert_eq!(f.ok(c.zrange("z", 0, -1)), vec![b("b"), b("c"), b("a")]);
    assert_eq!(f.ok(c.zrevrange("z", 0, 1)), vec![b("a"), b("c")]);
    assert_eq!(f.ok(c.zrem("z", &["b", "none"])), 1);
    assert_eq!(
        redis_cmd!(f.raw, b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"),
        Resp::Array(Some(vec![
            Resp::Bulk(Some(b("c"))),
            Resp::Bulk(Some(b("3.5"))),
            Resp::Bulk(Some(b("a"))),
            Resp::Bulk(Some(b("11.5"))),
        ]))
    );
}

#[test]
fn scripts_and_raw_commands() {
    let mut f = fixture();
    let c = f.client.clone();
    // EVAL with keys and binary args.
    let v = f.ok(c.eval(
        "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}",
        &["key"],
        &[&b"\x00a"[..], b"41"],
    ));
    assert_eq!(
        v,
        Value::Array(vec![
            Value::Bulk(b("key")),
            Value::Bulk(b"\x00a".to_vec()),
            Value::Int(42)
        ])
    );
    // EVALSHA of a script the server does not have: NOSCRIPT, then EVAL.
    let script = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    let before = f.host.callouts().len();
    assert_eq!(
        f.ok(c.eval_script(&script, &["counter"], &[5])),
        Value::Int(5)
    );
    assert_eq!(f.host.callouts().len() - before, 2, "EVALSHA then EVAL");
    assert_eq!(
        redis_cmd!(f.raw, b"SCRIPT", b"EXISTS", script.sha1().as_bytes()),
        Resp::Array(Some(vec![Resp::Int(1)]))
    );
    // Now cached: one EVALSHA.
    let before = f.host.callouts().len();
    assert_eq!(
        f.ok(c.eval_script(&script, &["counter"], &[2])),
        Value::Int(7)
    );
    assert_eq!(f.host.callouts().len() - before, 1);
    let last = f.host.callouts().pop().unwrap();
    match last.kind {
        CalloutKind::Redis { query, .. } => assert!(query.windows(7).any(|w| w == b"EVALSHA")),
        other => panic!("{other:?}"),
    }
    // A script error is a reply error.
    match f.run(c.eval(
        "return redis.error_reply('boom')",
        &[] as &[&str],
        &[] as &[&str],
    )) {
        Err(RedisError::Reply(m)) => assert!(m.contains("boom"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The raw command.
    assert_eq!(f.ok(c.command(&["PING"])), Value::Status("PONG".into()));
    assert_eq!(
        f.ok(c.command(&[&b"ECHO"[..], b"\x00\xff"])),
        Value::Bulk(b"\x00\xff".to_vec())
    );
    assert_eq!(f.ok(c.command(&["GET", "absent"])), Value::Nil);
}

#[test]
fn unknown_commands_are_reply_errors() {
    let f = fixture();
    match f.run(f.client.command(&["NOSUCHCOMMAND"])) {
        Err(RedisError::Reply(m)) => assert!(m.contains("unknown command"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_commands_are_refused_without_a_call() {
    let f = fixture();
    let c = f.client.clone();
    for args in [
        vec!["SUBSCRIBE", "chan"],
        vec!["psubscribe", "c*"],
        vec!["MONITOR"],
        vec!["MULTI"],
        vec!["exec"],
        vec!["WATCH", "k"],
        vec!["HELLO", "3"],
        vec!["SELECT", "2"],
        vec!["AUTH", "pw"],
    ] {
        match f.run(c.command(&args)) {
            Err(RedisError::Unsupported { command, why }) => {
                assert_eq!(command, args[0].to_ascii_uppercase());
                assert!(!why.is_empty());
            }
            other => panic!("{args:?}: {other:?}"),
        }
    }
    assert!(f.host.callouts().is_empty(), "{:?}", f.host.callouts());
    // HELLO 2 stays allowed (RESP2).
    assert!(matches!(
        f.run(c.command(&["HELLO", "2"])),
        Ok(Value::Array(_))
    ));
}
