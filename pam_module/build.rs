//! Links the unwinder statically (what `gcc -static-libgcc` does) instead of needing
//! libgcc_s.so.1: rustc asks for `-lgcc_s`, and this puts a linker script of that name first
//! in the search path that reads `-lgcc_eh` (the static, position-independent unwinder)
//! instead.
//!
//! Why: every process that loads libgcc_s.so.1 runs its constructor, which probes the CPU
//! with CPUID, and under virtualization that costs about 0.13 ms of every login through sshd,
//! login or su (measured in docs/performance.md). Panics never leave the module (`lib.rs`
//! catches them at the hook), so no unwinding ever crosses into the host's code, which is
//! the case two unwinders in one process would get wrong. The version script rustc writes
//! for a cdylib keeps the unwinder's symbols local.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    // The linux-gnu targets are the ones whose std links libgcc_s.
    if !target.ends_with("-linux-gnu") {
        return;
    }
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    let script = out_dir.join("libgcc_s.so");
    if std::fs::write(&script, "INPUT(-lgcc_eh)\n").is_ok() {
        println!("cargo:rustc-link-search=native={}", out_dir.display());
    }
}
