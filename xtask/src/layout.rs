//! The boot path packed together in the statically linked benchmark binary.
//!
//! A program's text is paged in by faults, and each fault maps the 64 KiB
//! around it (the kernel's fault-around) when those pages are in the page
//! cache. The boot touches about 330 functions (some 125 KiB of code), but
//! the linker scatters them over the whole 1.5 MiB text in crate order, so
//! a boot faulted in 19 of its 23 windows: 1,112 KiB of resident text for
//! 448 KiB of touched pages. Listing the boot's functions to the linker
//! (lld's `--symbol-ordering-file`) puts them side by side at the start of
//! `.text`: `bench-rt boot`'s peak RSS went from 1,720 KiB to 828 KiB
//! (`VmHWM` at exit, page cache evicted before a warm-up run), and a cold
//! start takes fewer faults.
//!
//! `xtask/boot-order.txt` lists the functions, in the order a traced boot
//! first ran them ([`trace`]: every thread single-stepped with `ptrace`).
//! Rust's symbol names end in a hash that changes with the build, so the
//! list keeps names without it ([`key`]), and each static build resolves
//! the list against the symbols of a first, unordered link ([`resolve`])
//! before linking again with the result. A stale entry costs only its own
//! placement; the build says how many entries it found.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The committed list, relative to the workspace root.
pub(crate) const ORDER_FILE: &str = "xtask/boot-order.txt";

/// A function symbol of an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Func {
    pub name: String,
    pub addr: u64,
    pub size: u64,
}

fn u16_at(d: &[u8], o: usize) -> Result<u16, String> {
    d.get(o..o + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| format!("ELF file truncated at {o}"))
}

fn u32_at(d: &[u8], o: usize) -> Result<u32, String> {
    d.get(o..o + 4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .ok_or_else(|| format!("ELF file truncated at {o}"))
}

fn u64_at(d: &[u8], o: usize) -> Result<u64, String> {
    d.get(o..o + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or_else(|| format!("ELF file truncated at {o}"))
}

/// One section header's fields that matter here.
struct Section {
    name: u32,
    kind: u32,
    offset: usize,
    size: usize,
    link: u32,
}

const SHT_SYMTAB: u32 = 2;
const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;

fn sections(d: &[u8]) -> Result<Vec<Section>, String> {
    if d.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1]) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let shoff = u64_at(d, 0x28)? as usize;
    let shentsize = u16_at(d, 0x3a)? as usize;
    let shnum = u16_at(d, 0x3c)? as usize;
    (0..shnum)
        .map(|i| {
            let o = shoff + i * shentsize;
            Ok(Section {
                name: u32_at(d, o)?,
                kind: u32_at(d, o + 4)?,
                offset: u64_at(d, o + 24)? as usize,
                size: u64_at(d, o + 32)? as usize,
                link: u32_at(d, o + 40)?,
            })
        })
        .collect()
}

fn bytes<'a>(d: &'a [u8], s: &Section) -> Result<&'a [u8], String> {
    d.get(s.offset..s.offset + s.size)
        .ok_or_else(|| "ELF section outside the file".to_string())
}

fn cstr(tab: &[u8], o: usize) -> String {
    let s = tab.get(o..).unwrap_or_default();
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    String::from_utf8_lossy(&s[..end]).into_owned()
}

/// The defined function symbols of an ELF64 file, sorted by address.
pub(crate) fn functions(d: &[u8]) -> Result<Vec<Func>, String> {
    let secs = sections(d)?;
    let mut out = Vec::new();
    for s in secs.iter().filter(|s| s.kind == SHT_SYMTAB) {
        let strtab = secs
            .get(s.link as usize)
            .ok_or("symbol table without string table")?;
        let (syms, names) = (bytes(d, s)?, bytes(d, strtab)?);
        for e in syms.chunks_exact(24) {
            let kind = e[4] & 0xf;
            let shndx = u16::from_le_bytes([e[6], e[7]]);
            if (kind != STT_FUNC && kind != STT_GNU_IFUNC) || shndx == 0 {
                continue;
            }
            out.push(Func {
                name: cstr(names, u32_at(e, 0)? as usize),
                addr: u64_at(e, 8)?,
                size: u64_at(e, 16)?,
            });
        }
    }
    out.sort_by_key(|f| f.addr);
    Ok(out)
}

/// The text of the `.comment` section (the compilers and linker that made
/// the file, NUL-separated), if any.
pub(crate) fn comment(d: &[u8]) -> Result<String, String> {
    let secs = sections(d)?;
    let shstrndx = u16_at(d, 0x3e)? as usize;
    let names = bytes(d, secs.get(shstrndx).ok_or("no section name table")?)?;
    for s in &secs {
        if cstr(names, s.name as usize) == ".comment" {
            return Ok(String::from_utf8_lossy(bytes(d, s)?).replace('\0', "\n"));
        }
    }
    Ok(String::new())
}

/// A symbol's name without what changes from build to build: the
/// `.llvm.<n>` suffix of a promoted local, and the `17h<16 hex>E` hash at
/// the end of a legacy-mangled Rust name (the `E` that closes the path
/// goes with it; the list only needs a name that is the same every build).
pub(crate) fn key(name: &str) -> &str {
    let name = match name.find(".llvm.") {
        Some(i) => &name[..i],
        None => name,
    };
    let b = name.as_bytes();
    let n = b.len();
    if n > 20
        && name.starts_with("_ZN")
        && &b[n - 20..n - 17] == b"17h"
        && b[n - 17..n - 1].iter().all(u8::is_ascii_hexdigit)
        && b[n - 1] == b'E'
    {
        &name[..n - 20]
    } else {
        name
    }
}

/// The entries of a list file: one key per line; `#` starts a comment.
pub(crate) fn entries(list: &str) -> Vec<&str> {
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The symbol ordering for a binary with functions `funcs`: every symbol
/// whose [`key`] is on the list, in the list's order (one line each, as
/// lld reads it), and how many list entries matched at least one symbol.
pub(crate) fn resolve(list: &[&str], funcs: &[Func]) -> (String, usize) {
    let mut by_key: HashMap<&str, Vec<&str>> = HashMap::new();
    for f in funcs {
        by_key.entry(key(&f.name)).or_default().push(&f.name);
    }
    let mut out = String::new();
    let mut found = 0;
    let mut done = HashSet::new();
    for k in list {
        if !done.insert(*k) {
            continue;
        }
        if let Some(names) = by_key.get(k) {
            found += 1;
            for n in names {
                out.push_str(n);
                out.push('\n');
            }
        }
    }
    (out, found)
}

/// The functions containing `addrs` (in order, each once), as [`key`]s.
pub(crate) fn first_touch(addrs: &[u64], funcs: &[Func]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for &a in addrs {
        let i = funcs.partition_point(|f| f.addr <= a);
        let Some(f) = i.checked_sub(1).map(|i| &funcs[i]) else {
            continue;
        };
        if a >= f.addr + f.size.max(1) {
            continue;
        }
        let k = key(&f.name);
        if seen.insert(k.to_string()) {
            out.push(k.to_string());
        }
    }
    out
}

/// Runs `prog args` with every thread single-stepped under `ptrace` and
/// returns each instruction address in the order it first ran.
pub(crate) fn trace(prog: &Path, args: &[&str]) -> Result<Vec<u64>, String> {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(prog);
    c.args(args).stdout(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only
    // makes the ptrace system call, which is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = c
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", prog.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut st = 0;
    // The exec stops the traced child with SIGTRAP before its first
    // instruction.
    // SAFETY: plain system calls on our own child.
    unsafe {
        if libc::waitpid(pid, &mut st, 0) != pid || !libc::WIFSTOPPED(st) {
            return Err("the traced program did not stop at exec".into());
        }
        let opts = libc::PTRACE_O_TRACECLONE | libc::PTRACE_O_EXITKILL;
        libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts);
        libc::ptrace(libc::PTRACE_SINGLESTEP, pid, 0, 0);
    }
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    loop {
        // SAFETY: waits for any traced thread of our child.
        let t = unsafe { libc::waitpid(-1, &mut st, libc::__WALL) };
        if t < 0 {
            break;
        }
        if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
            if t == pid {
                break;
            }
            continue;
        }
        let sig = libc::WSTOPSIG(st);
        let event = st >> 16;
        let mut deliver = 0;
        if sig == libc::SIGTRAP && event == 0 {
            // SAFETY: `regs` is plain data the kernel fills for a stopped
            // tracee.
            let mut regs: libc::user_regs_struct = unsafe { core::mem::zeroed() };
            // SAFETY: as above.
            if unsafe { libc::ptrace(libc::PTRACE_GETREGS, t, 0, &mut regs) } == 0
                && seen.insert(regs.rip)
            {
                order.push(regs.rip);
            }
        } else if event == 0 && sig != libc::SIGSTOP {
            // A signal of the program's own (a preemption, say): pass it on.
            deliver = sig;
        }
        // SAFETY: `t` is a stopped tracee of ours.
        unsafe { libc::ptrace(libc::PTRACE_SINGLESTEP, t, 0, deliver as libc::c_long) };
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_drops_the_hash_and_llvm_suffix_only() {
        assert_eq!(
            key("_ZN8rt_sched4chan4send17h0123456789abcdefE"),
            "_ZN8rt_sched4chan4send"
        );
        assert_eq!(
            key("_ZN3std2rt10lang_start17h0123456789abcdefE.llvm.12345"),
            "_ZN3std2rt10lang_start"
        );
        assert_eq!(key("memcpy"), "memcpy");
        assert_eq!(
            key("get_common_indices.constprop.0"),
            "get_common_indices.constprop.0"
        );
        // Not a hash: 'g' is no hex digit.
        assert_eq!(
            key("_ZN1a1b17h0123456789abcdegE"),
            "_ZN1a1b17h0123456789abcdegE"
        );
    }

    #[test]
    fn resolve_keeps_list_order_and_every_instance() {
        let f = |name: &str, addr| Func {
            name: name.into(),
            addr,
            size: 16,
        };
        let funcs = [
            f("_ZN1a1f17h0000000000000001E", 0x10),
            f("_ZN1a1f17h0000000000000002E", 0x20),
            f("main", 0x30),
        ];
        let (out, found) = resolve(&["main", "gone", "_ZN1a1f", "main"], &funcs);
        assert_eq!(found, 2);
        assert_eq!(
            out,
            "main\n_ZN1a1f17h0000000000000001E\n_ZN1a1f17h0000000000000002E\n"
        );
    }

    #[test]
    fn first_touch_maps_addresses_to_functions_once() {
        let funcs = [
            Func {
                name: "a".into(),
                addr: 0x100,
                size: 0x10,
            },
            Func {
                name: "b".into(),
                addr: 0x200,
                size: 0x10,
            },
        ];
        let got = first_touch(&[0x205, 0x50, 0x100, 0x20f, 0x110, 0x108], &funcs);
        assert_eq!(got, ["b", "a"]);
    }

    #[test]
    fn reads_its_own_function_symbols() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let funcs = functions(&me).unwrap();
        assert!(funcs.windows(2).all(|w| w[0].addr <= w[1].addr));
        let f = funcs
            .iter()
            .find(|f| f.name.contains("key_drops_the_hash"))
            .expect("the test function is in the symbol table");
        assert!(f.size > 0 && key(&f.name).len() < f.name.len(), "{f:?}");
        assert!(!comment(&me).unwrap().is_empty());
    }
}
