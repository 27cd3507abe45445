//! Walking a stack by its call-frame information (the `.eh_frame` CFI every
//! Rust and C object carries for unwinding), from any register state: the
//! signal context of a faulting goroutine, the saved context of a parked
//! one, or the caller's own registers.
//!
//! Go walks with its own pclntab; Rust code has no such table, and frame
//! pointers are absent from the standard library and from most builds, so
//! the unwind tables are the one source that describes every frame. The
//! walk is async-signal-safe: no allocation (gimli's unwind context lives
//! on the stack), no lock other than the loader's `dl_iterate_phdr` one,
//! and memory is read only inside the stack bounds the caller gives.

use core::ffi::{c_int, c_void};

use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, EndianSlice, NativeEndian, Pointer, Register,
    RegisterRule, UnwindContext, UnwindContextStorage, UnwindSection, UnwindTableRow,
};

use crate::arch::{dwarf, Regs};

/// One frame of a walk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Frame {
    /// The frame's program counter: the faulting or current instruction for
    /// the first frame of a walk started from live registers, a return
    /// address for every other.
    pub pc: usize,
    /// The stack pointer in this frame.
    pub sp: usize,
    /// The frame's canonical frame address (the caller's stack pointer
    /// before the call), 0 when unknown.
    pub cfa: usize,
    /// The entry address of the function holding `pc` (from its FDE), 0
    /// when no unwind information covers `pc`.
    pub func: usize,
    /// `pc` is the instruction itself, not a return address (so it needs no
    /// `- 1` to land inside the call it belongs to).
    pub exact: bool,
}

impl Frame {
    /// The address to look up for this frame's function and line: a return
    /// address belongs to the call before it.
    pub fn lookup_pc(&self) -> usize {
        if self.exact {
            self.pc
        } else {
            self.pc.wrapping_sub(1)
        }
    }
}

/// gimli's unwind state on the stack: 32 register rules (amd64's CFI names
/// 17 registers) and four remembered states.
struct OnStack;

impl<T: gimli::ReaderOffset> UnwindContextStorage<T> for OnStack {
    type Rules = [(Register, RegisterRule<T>); 32];
    type Stack = [UnwindTableRow<T, Self>; 4];
}

type Slice = EndianSlice<'static, NativeEndian>;

/// The unwind tables of the loaded object holding some address.
struct Object {
    hdr: usize,
    hdr_len: usize,
    /// Every loadable segment of the object, to bound `.eh_frame`.
    loads: [(usize, usize); 16],
    nloads: usize,
}

struct Search {
    pc: usize,
    found: Option<Object>,
}

extern "C" fn visit(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: `data` is the `Search` find_object passed to dl_iterate_phdr,
    // which calls us synchronously.
    let s = unsafe { &mut *(data as *mut Search) };
    // SAFETY: the loader passes a valid dl_phdr_info for the duration of the call.
    let info = unsafe { &*info };
    let base = info.dlpi_addr as usize;
    let mut obj = Object {
        hdr: 0,
        hdr_len: 0,
        loads: [(0, 0); 16],
        nloads: 0,
    };
    let mut holds = false;
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        let lo = base.wrapping_add(ph.p_vaddr as usize);
        let hi = lo.wrapping_add(ph.p_memsz as usize);
        match ph.p_type {
            libc::PT_LOAD => {
                if obj.nloads < obj.loads.len() {
                    obj.loads[obj.nloads] = (lo, hi);
                    obj.nloads += 1;
                }
                if (lo..hi).contains(&s.pc) {
                    holds = true;
                }
            }
            libc::PT_GNU_EH_FRAME => {
                obj.hdr = lo;
                obj.hdr_len = ph.p_memsz as usize;
            }
            _ => {}
        }
    }
    if holds && obj.hdr != 0 {
        s.found = Some(obj);
        return 1;
    }
    holds as c_int
}

fn find_object(pc: usize) -> Option<Object> {
    let mut s = Search { pc, found: None };
    // SAFETY: `visit` matches the callback type and only uses `s`, which
    // outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), &mut s as *mut Search as *mut c_void) };
    s.found
}

impl Object {
    /// The end of the loadable segment holding `addr`.
    fn segment_end(&self, addr: usize) -> Option<usize> {
        self.loads[..self.nloads]
            .iter()
            .find(|(lo, hi)| (*lo..*hi).contains(&addr))
            .map(|&(_, hi)| hi)
    }
}

/// Static byte slice over mapped memory.
///
/// # Safety
/// `[addr, addr + len)` must be mapped, readable and never unmapped.
unsafe fn bytes(addr: usize, len: usize) -> Slice {
    // SAFETY: the caller guarantees the range stays mapped and readable.
    EndianSlice::new(
        unsafe { core::slice::from_raw_parts(addr as *const u8, len) },
        NativeEndian,
    )
}

/// What a row of unwind information says about a frame.
struct Step {
    func: usize,
    cfa: usize,
    caller: Regs,
    end: bool,
}

type Fde = gimli::FrameDescriptionEntry<Slice>;

/// The `.eh_frame` section, its base addresses and the FDE covering `pc`,
/// found through the `.eh_frame_hdr` search table of the object holding it.
fn fde_for(pc: usize) -> Option<(EhFrame<Slice>, BaseAddresses, Fde)> {
    let obj = find_object(pc)?;
    // SAFETY: PT_GNU_EH_FRAME lies inside a loaded segment of an object
    // that is loaded now; objects holding a live frame are not unloaded.
    let hdr = unsafe { bytes(obj.hdr, obj.hdr_len) };
    let bases = BaseAddresses::default().set_eh_frame_hdr(obj.hdr as u64);
    let parsed = EhFrameHdr::new(hdr.slice(), NativeEndian)
        .parse(&bases, 8)
        .ok()?;
    let eh_frame = match parsed.eh_frame_ptr() {
        Pointer::Direct(a) => a as usize,
        Pointer::Indirect(p) => read_static(&obj, p as usize)?,
    };
    let end = obj.segment_end(eh_frame)?;
    // SAFETY: `.eh_frame` lies in the loaded segment [eh_frame, end).
    let section = EhFrame::from(unsafe { bytes(eh_frame, end - eh_frame) });
    let bases = bases.set_eh_frame(eh_frame as u64);
    let fde = parsed
        .table()?
        .fde_for_address(&section, &bases, pc as u64, EhFrame::cie_from_offset)
        .ok()?;
    Some((section, bases, fde))
}

/// Applies the unwind row for `lookup` to `regs`. `read` returns the word
/// at an address, or `None` outside the readable stack.
fn step(regs: &Regs, lookup: usize, read: &dyn Fn(usize) -> Option<usize>) -> Option<Step> {
    let (section, bases, fde) = fde_for(lookup)?;
    let mut ctx: UnwindContext<usize, OnStack> = UnwindContext::new_in();
    let row = fde
        .unwind_info_for_address(&section, &bases, &mut ctx, lookup as u64)
        .ok()?;
    let cfa = match *row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => {
            regs.get(register.0)?.wrapping_add(offset as usize)
        }
        CfaRule::Expression(_) => return None,
    };
    let mut caller = *regs;
    caller.sp = cfa;
    let mut end = false;
    for r in [
        dwarf::RA,
        dwarf::RBP,
        dwarf::RBX,
        dwarf::R12,
        dwarf::R13,
        dwarf::R14,
        dwarf::R15,
    ] {
        let is_ra = r == dwarf::RA;
        let v = match row.register(Register(r)).unwrap_or(RegisterRule::Undefined) {
            // No rule for the return address: this frame has no caller.
            RegisterRule::Undefined if is_ra => {
                end = true;
                continue;
            }
            RegisterRule::Undefined | RegisterRule::SameValue => continue,
            RegisterRule::Offset(n) => read(cfa.wrapping_add(n as usize))?,
            RegisterRule::ValOffset(n) => cfa.wrapping_add(n as usize),
            RegisterRule::Register(o) => regs.get(o.0)?,
            // A return address the walk cannot compute ends it.
            _ if is_ra => return None,
            // Any other register the walk cannot compute is left as it
            // was, which only matters if a later CFA is based on it.
            _ => continue,
        };
        if r == dwarf::RA {
            caller.pc = v;
        } else {
            caller.set(r, v);
        }
    }
    Some(Step {
        func: fde.initial_address() as usize,
        cfa,
        caller,
        end,
    })
}

/// Reads a word of an object's static data (an indirect `.eh_frame` pointer).
fn read_static(obj: &Object, addr: usize) -> Option<usize> {
    obj.segment_end(addr).filter(|&e| addr + 8 <= e)?;
    // SAFETY: the word lies inside a loaded segment of the object.
    Some(unsafe { (addr as *const usize).read_unaligned() })
}

/// The entry address of the function holding `pc`, from its unwind
/// information; `None` where none covers it.
pub fn function_start(pc: usize) -> Option<usize> {
    fde_for(pc).map(|(_, _, fde)| fde.initial_address() as usize)
}

/// Walks the stack described by `start`, whose memory is `[lo, hi)`, into
/// `out`; returns how many frames were written. The first frame is
/// `start.pc` itself (`exact` as `first_exact` says); each next frame is
/// the previous one's return address. The walk ends before a caller without
/// unwind information (a goroutine's `rt_goexit`),
/// at a frame that marks itself outermost, at a caller's stack pointer
/// outside `(sp, hi]`, or when `out` is full.
pub fn walk(start: Regs, first_exact: bool, lo: usize, hi: usize, out: &mut [Frame]) -> usize {
    let read = |a: usize| -> Option<usize> {
        if a < lo || a.checked_add(8)? > hi || a % 8 != 0 {
            return None;
        }
        // SAFETY: the caller guarantees [lo, hi) is the mapped stack being
        // walked; the address lies inside it and is aligned.
        Some(unsafe { core::ptr::read_volatile(a as *const usize) })
    };
    let mut regs = start;
    let mut exact = first_exact;
    let mut n = 0;
    while n < out.len() && regs.pc != 0 {
        let mut f = Frame {
            pc: regs.pc,
            sp: regs.sp,
            cfa: 0,
            func: 0,
            exact,
        };
        let Some(s) = step(&regs, f.lookup_pc(), &read) else {
            // A caller without unwind information is the assembly a stack
            // starts in (`rt_goexit`, which a symbolizer would misname after
            // its neighbour) and ends the walk unseen; a first frame
            // without it is still where the thread was.
            if n == 0 {
                f.func = function_start(f.lookup_pc()).unwrap_or(0);
                out[n] = f;
                n += 1;
            }
            break;
        };
        f.func = s.func;
        f.cfa = s.cfa;
        out[n] = f;
        n += 1;
        if s.end || s.cfa <= regs.sp || s.cfa > hi {
            break;
        }
        regs = s.caller;
        exact = false;
    }
    n
}
