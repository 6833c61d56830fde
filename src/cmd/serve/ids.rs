//! Request ids and X-Ray trace ids for `bootstrap serve`, shaped like Lambda's: a UUID
//! (`8476a536-e9f4-11e8-9739-2dfe598c3fcd`) and `Root=1-<time>-<24 hex>;Parent=<16 hex>;Sampled=0`.
//!
//! They only have to be unique within one run and look like the real ones to handlers that
//! parse them; they are not secrets. A splitmix64 sequence seeded once from the kernel's
//! random bytes (or, failing that, the clock and the pid) gives that without a dependency.

use std::io::Read;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static SEED: OnceLock<u64> = OnceLock::new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn seed() -> u64 {
    *SEED.get_or_init(|| {
        let mut bytes = [0u8; 8];
        let from_kernel =
            std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
        match from_kernel {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                now.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)
            }
        }
    })
}

/// The next 64 pseudo-random bits: splitmix64 over a counter, so no two calls collide.
fn next_u64() -> u64 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut z = seed().wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random (version 4) UUID.
pub fn request_id() -> String {
    let (a, b) = (next_u64(), next_u64());
    let a = (a & !0xF000) | 0x4000; // version 4
    let b = (b & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}

/// An X-Ray trace header for one invocation, not sampled.
pub fn trace_id() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (a, b, parent) = (next_u64(), next_u64(), next_u64());
    format!("Root=1-{:08x}-{:016x}{:08x};Parent={parent:016x};Sampled=0", secs as u32, a, b as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        let ids: Vec<String> = (0..1000).map(|_| request_id()).collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            let parts: Vec<&str> = id.split('-').collect();
            let lengths: Vec<usize> = parts.iter().map(|p| p.len()).collect();
            assert_eq!(lengths, [8, 4, 4, 4, 12], "{id}");
            assert!(parts[2].starts_with('4'), "{id}");
            assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
        }
    }

    #[test]
    fn trace_ids_have_xrays_shape() {
        let trace = trace_id();
        let (root, rest) = trace.split_once(';').unwrap();
        let root = root.strip_prefix("Root=1-").unwrap();
        let (time, unique) = root.split_once('-').unwrap();
        assert_eq!((time.len(), unique.len()), (8, 24), "{trace}");
        assert!(rest.starts_with("Parent=") && rest.ends_with(";Sampled=0"), "{trace}");
    }
}
