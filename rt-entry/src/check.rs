//! `check`: the runtime's sanity checks (Go's `runtime1.go` `check`), run
//! before anything depends on them. A failure is `fatal error: <what>`.

use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// One failed check: what Go's `throw` would say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure(pub &'static str);

/// Go's `timediv`: `v / div` and the remainder, without a 64-bit divide
/// instruction (the runtime uses it where a divide could not be linked).
pub fn timediv(v: i64, div: i32, rem: Option<&mut i32>) -> i32 {
    let mut res: i32 = 0;
    let mut v = v;
    for bit in (0..=30).rev() {
        if v >= (div as i64) << bit {
            v -= (div as i64) << bit;
            res |= 1 << bit;
        }
    }
    if v >= div as i64 {
        if let Some(r) = rem {
            *r = 0;
        }
        return 0x7fff_ffff;
    }
    if let Some(r) = rem {
        *r = v as i32;
    }
    res
}

/// Runs every check; the first failure is returned.
// The NaN checks compare a value with itself and negate partial orders on
// purpose: that is what they test.
#[allow(
    clippy::eq_op,
    clippy::neg_cmp_op_on_partial_ord,
    clippy::nonminimal_bool
)]
pub fn run() -> Result<(), CheckFailure> {
    macro_rules! ensure {
        ($cond:expr, $msg:literal) => {
            if !$cond {
                return Err(CheckFailure($msg));
            }
        };
    }
    // Type sizes the runtime's layouts assume.
    ensure!(
        core::mem::size_of::<i8>() == 1 && core::mem::size_of::<u8>() == 1,
        "bad a"
    );
    ensure!(
        core::mem::size_of::<i16>() == 2 && core::mem::size_of::<u16>() == 2,
        "bad c"
    );
    ensure!(
        core::mem::size_of::<i32>() == 4 && core::mem::size_of::<u32>() == 4,
        "bad e"
    );
    ensure!(
        core::mem::size_of::<i64>() == 8 && core::mem::size_of::<u64>() == 8,
        "bad g"
    );
    ensure!(core::mem::size_of::<f32>() == 4, "bad i");
    ensure!(core::mem::size_of::<f64>() == 8, "bad j");
    ensure!(core::mem::size_of::<*const u8>() == 8, "bad k");
    ensure!(core::mem::size_of::<usize>() == 8, "bad l");
    #[repr(C)]
    struct X1 {
        x: u8,
    }
    #[repr(C)]
    struct Y1 {
        x1: X1,
        y: u8,
    }
    ensure!(core::mem::size_of::<X1>() == 1, "bad unsafe.Sizeof x1");
    ensure!(core::mem::offset_of!(Y1, y) == 1, "bad offsetof y1.y");
    ensure!(core::mem::size_of::<Y1>() == 2, "bad unsafe.Sizeof y1");
    let _ = (
        X1 { x: 0 }.x,
        Y1 {
            x1: X1 { x: 0 },
            y: 0,
        }
        .x1
        .x,
    );

    let mut rem = 0;
    ensure!(
        timediv(12345 * 1_000_000_000 + 54321, 1_000_000_000, Some(&mut rem)) == 12345
            && rem == 54321,
        "bad timediv"
    );

    // 32-bit compare-and-swap.
    let z = AtomicU32::new(1);
    ensure!(
        z.compare_exchange(1, 2, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok(),
        "cas1"
    );
    ensure!(z.load(Ordering::SeqCst) == 2, "cas2");
    let z = AtomicU32::new(4);
    ensure!(
        z.compare_exchange(5, 6, Ordering::SeqCst, Ordering::SeqCst)
            .is_err(),
        "cas3"
    );
    ensure!(z.load(Ordering::SeqCst) == 4, "cas4");
    let z = AtomicU32::new(0xffff_ffff);
    ensure!(
        z.compare_exchange(0xffff_ffff, 0xffff_fffe, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok(),
        "cas5"
    );
    ensure!(z.load(Ordering::SeqCst) == 0xffff_fffe, "cas6");

    // Or8/And8 on one byte of a 4-byte array touch only that byte.
    let m = [
        AtomicU8::new(1),
        AtomicU8::new(1),
        AtomicU8::new(1),
        AtomicU8::new(1),
    ];
    m[1].fetch_or(0xf0, Ordering::SeqCst);
    ensure!(
        m[0].load(Ordering::SeqCst) == 1
            && m[1].load(Ordering::SeqCst) == 0xf1
            && m[2].load(Ordering::SeqCst) == 1
            && m[3].load(Ordering::SeqCst) == 1,
        "atomicor8"
    );
    let m = [
        AtomicU8::new(0xff),
        AtomicU8::new(0xff),
        AtomicU8::new(0xff),
        AtomicU8::new(0xff),
    ];
    m[1].fetch_and(0x1, Ordering::SeqCst);
    ensure!(
        m[0].load(Ordering::SeqCst) == 0xff
            && m[1].load(Ordering::SeqCst) == 0x1
            && m[2].load(Ordering::SeqCst) == 0xff
            && m[3].load(Ordering::SeqCst) == 0xff,
        "atomicand8"
    );

    // NaN never compares equal or ordered (read through black_box so the
    // comparisons happen at run time, on this CPU).
    let nan64 = core::hint::black_box(f64::NAN);
    let one64 = core::hint::black_box(1.0f64);
    ensure!(nan64 != nan64, "float64nan");
    ensure!(
        !(nan64 < one64) && !(nan64 > one64) && !(nan64 == one64),
        "float64nan1"
    );
    ensure!(!(nan64 <= nan64) && !(nan64 >= nan64), "float64nan2");
    let nan32 = core::hint::black_box(f32::NAN);
    let one32 = core::hint::black_box(1.0f32);
    ensure!(nan32 != nan32, "float32nan");
    ensure!(
        !(nan32 < one32) && !(nan32 > one32) && !(nan32 == one32),
        "float32nan1"
    );
    ensure!(!(nan32 <= nan32) && !(nan32 >= nan32), "float32nan2");

    // 64-bit atomics with values above 2^32.
    let test_z64 = AtomicU64::new(42);
    let test_x64 = 0u64;
    let prefetch = 1u64 << 40;
    ensure!(
        test_z64
            .compare_exchange(test_x64, prefetch, Ordering::SeqCst, Ordering::SeqCst)
            .is_err(),
        "cas64 failed"
    );
    ensure!(test_z64.load(Ordering::SeqCst) == 42, "cas64 failed");
    test_z64.store(0, Ordering::SeqCst);
    ensure!(
        test_z64
            .compare_exchange(0, 1 << 40, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok(),
        "cas64 failed"
    );
    ensure!(test_z64.load(Ordering::SeqCst) == 1 << 40, "load64 failed");
    test_z64.store((1 << 40) + 1, Ordering::SeqCst);
    ensure!(
        test_z64.load(Ordering::SeqCst) == (1 << 40) + 1,
        "store64 failed"
    );
    ensure!(
        test_z64.fetch_add((1 << 40) + 1, Ordering::SeqCst) + (1 << 40) + 1 == (2 << 40) + 2,
        "xadd64 failed"
    );
    ensure!(
        test_z64.load(Ordering::SeqCst) == (2 << 40) + 2,
        "xadd64 failed"
    );
    ensure!(
        test_z64.swap((3 << 40) + 3, Ordering::SeqCst) == (2 << 40) + 2,
        "xchg64 failed"
    );
    ensure!(
        test_z64.load(Ordering::SeqCst) == (3 << 40) + 3,
        "xchg64 failed"
    );
    let s = AtomicI64::new(-1);
    ensure!(
        s.fetch_add(1, Ordering::SeqCst) == -1 && s.load(Ordering::SeqCst) == 0,
        "xadd64 failed"
    );

    // The stack sizes the pool hands out are powers of two (Go: _FixedStack).
    ensure!(
        rt_stack::DEFAULT_STACK_SIZE.is_power_of_two(),
        "FixedStack is not power-of-2"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn all_checks_pass_here() {
        assert_eq!(run(), Ok(()));
    }

    proptest! {
        /// timediv agrees with real division whenever the quotient fits.
        #[test]
        fn timediv_matches_division(v in 0i64..(i64::from(i32::MAX) * 1000), div in 1i32..=i32::MAX) {
            let mut rem = -1;
            let q = timediv(v, div, Some(&mut rem));
            let want = v / div as i64;
            if want < 0x7fff_ffff {
                prop_assert_eq!(q as i64, want);
                prop_assert_eq!(rem as i64, v % div as i64);
            } else {
                prop_assert_eq!(q, 0x7fff_ffff);
            }
        }
    }
}
