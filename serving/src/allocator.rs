//! Keeping the server's memory flat under glibc's malloc.
//!
//! By default glibc gives each thread that allocates under contention an
//! arena of its own (up to eight per core) and keeps memory freed in an
//! arena for that arena's later use; it also raises its mmap threshold each
//! time a large block is freed, so later large blocks come from the arenas
//! too. A server that swaps model versions all day (each swap loads one
//! version in full on a blocking thread and drops the other) therefore
//! grew: 36.6 MiB after warm-up to 55.3 MiB after 20 minutes of the soak
//! benchmark, with no leak. With one arena and fixed mmap and trim
//! thresholds of 128 KiB, the same load stayed at 18.8–19.3 MiB for 10
//! minutes (`bench/soak`, BENCHMARKS.md).
//!
//! These are glibc's own documented settings (`mallopt(3)`, the same as
//! `GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072`),
//! applied once at start-up; other allocators and platforms are left alone.
//! `GLIBC_TUNABLES` set by the operator still wins for any setting it names.

/// Blocks at least this large are mapped on their own and returned to the
/// system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Applies the settings. Call first thing in `main`, before any other
/// thread exists.
pub fn bound_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tuned = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        for (param, setting, value) in [
            (libc::M_ARENA_MAX, "glibc.malloc.arena_max", 1),
            (
                libc::M_MMAP_THRESHOLD,
                "glibc.malloc.mmap_threshold",
                MMAP_THRESHOLD,
            ),
            (
                libc::M_TRIM_THRESHOLD,
                "glibc.malloc.trim_threshold",
                MMAP_THRESHOLD,
            ),
        ] {
            if tuned.contains(setting) {
                continue;
            }
            // SAFETY: mallopt only changes allocator parameters; it is
            // called before the runtime starts any thread.
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}
