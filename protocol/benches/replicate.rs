//! Replication throughput: 256 MiB in 64 KiB blocks from a feed on disk to a fresh replica
//! on disk over TCP loopback (durable at the end), next to a plain TCP copy of the same
//! bytes (file to socket to file, synced) and JS hypercore 10 replicating the same number
//! of blocks of the same size (installed with npm into the target directory and run with
//! node, both peers in one node process) in the same run; then the catch-up time of a
//! fresh replica of a feed made of 10,000 appends of 100 bytes. Both peers run in this
//! process, on the same cores.
//!
//! Run: `cargo bench -p cobox-protocol --bench replicate` (`COBOX_BENCH_MIB=1024` for 1 GiB).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cobox_keys::Secret32;
use cobox_protocol::feed::Feed;
use cobox_protocol::feed::SharedFeed;
use cobox_protocol::replicate::{self, Options};
use cobox_schema::hexkey::Address;

mod support;
use support::copy::plain_copy;
use support::tcp::tcp_pair;

const BLOCK: usize = 64 * 1024;
/// The size replicated, in MiB (default 256).
const SIZE_ENV: &str = "COBOX_BENCH_MIB";
const ROUNDS: usize = 3;
const SMALL: usize = 10_000;
/// The version range of JS hypercore compared against.
const JS_HYPERCORE: &str = "hypercore@10";

/// The JS side, written next to its `node_modules` at run time. Arguments: a work
/// directory, the number of blocks, the block size, the number of rounds. A writer on disk
/// is filled first (not timed); each round then times a fresh reader on disk from
/// connecting over TCP loopback until it holds every block, is closed and its files are
/// synced (hypercore 10's own storage does not sync). One JSON line per round.
const JS_SCRIPT: &str = r#"// Replication throughput of JS hypercore 10; written out and run by cobox's replication
// benchmark (agent/benches/replicate.rs), which compares it with its own in the same run.
'use strict'
const Hypercore = require('hypercore')
const net = require('net')
const fs = require('fs')
const path = require('path')

async function main () {
  const [dir, blocksArg, blockArg, roundsArg] = process.argv.slice(2)
  const blocks = Number(blocksArg)
  const blockSize = Number(blockArg)
  const rounds = Number(roundsArg)
  const writer = new Hypercore(path.join(dir, 'writer'))
  await writer.ready()
  const batch = []
  for (let i = 0; i < 64; i++) {
    const b = Buffer.alloc(blockSize)
    for (let j = 0; j < blockSize; j++) b[j] = (i * 7 + j * 13) & 0xff
    batch.push(b)
  }
  for (let n = 0; n < blocks; n += batch.length) {
    await writer.append(batch.slice(0, Math.min(batch.length, blocks - n)))
  }
  const server = net.createServer(socket => {
    socket.setNoDelay(true)
    socket.on('error', () => {})
    socket.pipe(writer.replicate(false)).pipe(socket)
  })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = server.address().port
  for (let round = 0; round < rounds; round++) {
    const readerDir = path.join(dir, 'reader' + round)
    const reader = new Hypercore(readerDir, writer.key)
    await reader.ready()
    const start = process.hrtime.bigint()
    const socket = net.connect(port, '127.0.0.1')
    socket.setNoDelay(true)
    socket.on('error', () => {})
    const stream = reader.replicate(true)
    stream.on('error', () => {})
    socket.pipe(stream).pipe(socket)
    await reader.update({ wait: true })
    await reader.download({ start: 0, end: blocks }).done()
    if (reader.contiguousLength !== blocks) {
      throw new Error('the reader has ' + reader.contiguousLength + ' of ' + blocks + ' blocks')
    }
    socket.destroy()
    await reader.close()
    for (const name of fs.readdirSync(readerDir)) {
      const p = path.join(readerDir, name)
      if (!fs.statSync(p).isFile()) continue
      const fd = fs.openSync(p, 'r+')
      fs.fsyncSync(fd)
      fs.closeSync(fd)
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    console.log(JSON.stringify({ round, bytes: blocks * blockSize, seconds }))
    fs.rmSync(readerDir, { recursive: true, force: true })
  }
  server.close()
  await writer.close()
}

main().catch(err => { console.error(err && err.stack ? err.stack : String(err)); process.exit(1) })
"#;

fn total_bytes() -> usize {
    let mib = std::env::var(SIZE_ENV)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&m| m > 0)
        .unwrap_or(256);
    mib << 20
}

/// The target directory this bench was built into (its executable is in `release/deps`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the bench's own path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// The last lines of a command's output, for a message.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// Install JS hypercore 10 into the target directory unless it is there; its version.
fn install_js_hypercore(cache: &Path) -> Result<String, String> {
    let package = cache.join("node_modules/hypercore/package.json");
    if !package.exists() {
        std::fs::create_dir_all(cache)
            .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
        // Its own package.json, so that npm installs here and not in a parent directory.
        let manifest = cache.join("package.json");
        if !manifest.exists() {
            std::fs::write(
                &manifest,
                "{\"name\": \"cobox-bench-js\", \"private\": true}\n",
            )
            .map_err(|e| format!("cannot write {}: {e}", manifest.display()))?;
        }
        println!(
            "installing {JS_HYPERCORE} with npm into {}",
            cache.display()
        );
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", JS_HYPERCORE])
            .current_dir(cache)
            .output()
            .map_err(|e| format!("npm could not be run: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm install {JS_HYPERCORE} failed ({}): {}",
                out.status,
                tail(&out.stderr)
            ));
        }
    }
    let text = std::fs::read_to_string(&package)
        .map_err(|e| format!("cannot read {}: {e}", package.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", package.display()))?;
    json["version"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{} names no version", package.display()))
}

/// JS hypercore's installed version and the time of each round of replicating `blocks`
/// blocks of `BLOCK` bytes; or why it could not be measured.
fn js_hypercore(work: &Path, blocks: usize) -> Result<(String, Vec<Duration>), String> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("node could not be run: {e}"))?;
    if !node.status.success() {
        return Err(format!("node --version failed ({})", node.status));
    }
    let cache = target_dir().join("js-hypercore");
    let version = install_js_hypercore(&cache)?;
    let script = cache.join("replicate-bench.js");
    std::fs::write(&script, JS_SCRIPT)
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    std::fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let out = Command::new("node")
        .arg(&script)
        .arg(work)
        .args([blocks.to_string(), BLOCK.to_string(), ROUNDS.to_string()])
        .output()
        .map_err(|e| format!("node could not be run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the JS script failed ({}): {}",
            out.status,
            tail(&out.stderr)
        ));
    }
    let mut rounds = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("unexpected output {line:?}: {e}"))?;
        if v["bytes"].as_u64() != Some((blocks * BLOCK) as u64) {
            return Err(format!("the JS script replicated other bytes: {line}"));
        }
        let seconds = v["seconds"]
            .as_f64()
            .ok_or_else(|| format!("no seconds in {line:?}"))?;
        rounds.push(Duration::from_secs_f64(seconds));
    }
    if rounds.len() != ROUNDS {
        return Err(format!(
            "the JS script ran {} rounds of {ROUNDS}",
            rounds.len()
        ));
    }
    Ok((format!("hypercore {version}"), rounds))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn keys(n: u32) -> (cobox_keys::SigningKeyPair, [u8; 32]) {
    let k = cobox_keys::derive::feed(&Secret32::from_bytes([1; 32]), &Address([2; 32]), n);
    let seed = k.secret_bytes()[..32].try_into().unwrap();
    (k, seed)
}

/// Replicate `source` into a fresh replica in `dir`; the time until all of it is durable.
async fn replicate_into(source: &Arc<SharedFeed>, n: u32, dir: &Path) -> Duration {
    let copy = SharedFeed::new(Feed::open(dir, keys(n).0.public.0, None).await.unwrap());
    let length = source.held().length;
    let (a, b) = tcp_pair().await;
    let mut held = copy.subscribe();
    let start = Instant::now();
    let sa = replicate::spawn(a, false, [source.clone()], Options::default());
    let sb = replicate::spawn(b, true, [copy.clone()], Options::default());
    while held.borrow_and_update().contiguous < length {
        held.changed().await.unwrap();
    }
    let took = start.elapsed();
    sb.handle().close();
    sb.join().await.unwrap();
    sa.join().await.unwrap();
    took
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total = total_bytes();
    let tmp = tempfile::tempdir().unwrap();
    let (k, seed) = keys(0);
    let mut source = Feed::open(&tmp.path().join("source"), k.public.0, Some(&seed))
        .await
        .unwrap();
    let blocks: Vec<Vec<u8>> = (0..64)
        .map(|i| (0..BLOCK).map(|j| (i * 7 + j * 13) as u8).collect())
        .collect();
    let count = total / BLOCK;
    for start in (0..count).step_by(blocks.len()) {
        let n = blocks.len().min(count - start);
        source.append_batch(&blocks[..n]).await.unwrap();
    }
    let source = SharedFeed::new(source);
    println!(
        "replicating {} MiB in {} KiB blocks over TCP loopback, disk to disk:",
        total >> 20,
        BLOCK >> 10
    );
    let (mut repl_rates, mut plain_rates) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let plain = plain_copy(
            &tmp.path().join("source/data"),
            &tmp.path().join(format!("plain{round}")),
        )
        .await;
        let repl = replicate_into(&source, 0, &tmp.path().join(format!("copy{round}"))).await;
        println!(
            "  round {round}: replication {:>7.1} MiB/s ({:.2} s)   plain TCP copy {:>7.1} MiB/s ({:.2} s)   ratio {:.3}",
            mib_s(total, repl),
            repl.as_secs_f64(),
            mib_s(total, plain),
            plain.as_secs_f64(),
            plain.as_secs_f64() / repl.as_secs_f64()
        );
        repl_rates.push(mib_s(total, repl));
        plain_rates.push(mib_s(total, plain));
        let _ = std::fs::remove_dir_all(tmp.path().join(format!("copy{round}")));
        let _ = std::fs::remove_file(tmp.path().join(format!("plain{round}")));
    }
    let (repl, plain) = (median(repl_rates), median(plain_rates));
    println!(
        "JS {JS_HYPERCORE}, the same {count} blocks of {} KiB, reader on disk, synced:",
        BLOCK >> 10
    );
    let js = match js_hypercore(&tmp.path().join("js"), count) {
        Ok((version, rounds)) => {
            for (round, took) in rounds.iter().enumerate() {
                println!(
                    "  round {round}: {version} {:>7.1} MiB/s ({:.2} s)",
                    mib_s(total, *took),
                    took.as_secs_f64()
                );
            }
            Some((
                version,
                median(rounds.iter().map(|d| mib_s(total, *d)).collect()),
            ))
        }
        Err(why) => {
            println!("  JS hypercore comparison skipped: {why}");
            None
        }
    };
    let _ = std::fs::remove_dir_all(tmp.path().join("js"));
    println!("medians of {ROUNDS} rounds, {} MiB:", total >> 20);
    println!("  replication (cobox)  {repl:>7.1} MiB/s");
    println!(
        "  plain TCP copy       {plain:>7.1} MiB/s   replication/plain {:.3}",
        repl / plain
    );
    match &js {
        Some((version, rate)) => println!(
            "  JS {version:<17} {rate:>7.1} MiB/s   replication/JS {:.3}",
            repl / rate
        ),
        None => println!("  JS hypercore         skipped (see above)"),
    }

    let (k, seed) = keys(1);
    let mut small = Feed::open(&tmp.path().join("small"), k.public.0, Some(&seed))
        .await
        .unwrap();
    for i in 0..SMALL {
        small.append_batch(&[vec![i as u8; 100]]).await.unwrap();
    }
    let small = SharedFeed::new(small);
    println!("catch-up of a fresh replica of {SMALL} appends of 100 bytes:");
    for round in 0..3 {
        let took = replicate_into(&small, 1, &tmp.path().join(format!("small{round}"))).await;
        println!(
            "  round {round}: {:.2} s ({:.0} blocks/s)",
            took.as_secs_f64(),
            SMALL as f64 / took.as_secs_f64()
        );
    }
}
