//! Hooks: a slot holding a function pointer that one crate calls and a
//! crate above it installs (the fatal hook here, the scheduler's per-M
//! start hooks, sysmon's tick, the panic exit). The runtime's crates are
//! layered, so the lower one cannot name the function it calls; it calls
//! whatever the upper one put in the slot at boot.
//!
//! A [`Hook<F>`] stores the pointer in an `AtomicPtr<()>` and gives it back
//! as the `F` it was stored as. [`FnPtr`] is implemented only for function
//! pointer types (sealed), which is what makes the round trip through
//! `*mut ()` sound: a function pointer and a data pointer have the same size
//! on every target rt supports, and a non-null pointer read back from the
//! slot is always one a `set` stored from an `F`.

use core::marker::PhantomData;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering};

mod sealed {
    pub trait Sealed {}
}

/// A function pointer type a [`Hook`] can hold.
///
/// # Safety
/// Implemented only here, for function pointer types: `to_raw` must give a
/// non-null pointer that `from_raw` turns back into the same function.
pub unsafe trait FnPtr: Copy + sealed::Sealed {
    /// The pointer as a data pointer.
    fn to_raw(self) -> *mut ();
    /// Rebuilds the function pointer.
    ///
    /// # Safety
    /// `p` came from [`to_raw`](FnPtr::to_raw) of the same type.
    unsafe fn from_raw(p: *mut ()) -> Self;
}

macro_rules! fn_ptr {
    ($([$($g:ident),*] $t:ty;)*) => {$(
        impl<$($g),*> sealed::Sealed for $t {}
        // SAFETY: `$t` is a function pointer type: never null, the size of
        // a data pointer, and `as *mut ()` keeps its address.
        unsafe impl<$($g),*> FnPtr for $t {
            #[inline(always)]
            fn to_raw(self) -> *mut () {
                self as *mut ()
            }
            #[inline(always)]
            unsafe fn from_raw(p: *mut ()) -> Self {
                const { assert!(core::mem::size_of::<$t>() == core::mem::size_of::<*mut ()>()) };
                // SAFETY: `p` was made by `to_raw` from a `$t` (caller), and
                // the two types have the same size (checked above).
                unsafe { core::mem::transmute_copy::<*mut (), $t>(&p) }
            }
        }
    )*};
}

fn_ptr! {
    [] fn();
    [] fn() -> !;
    [] fn(&str) -> !;
    [A] fn(A);
    [A, B] fn(A, B);
    [A, B, C] fn(A, B, C);
}

/// A slot for one function pointer of type `F`, empty until [`set`]
/// (which may replace an earlier one).
///
/// [`set`]: Hook::set
pub struct Hook<F: FnPtr> {
    ptr: AtomicPtr<()>,
    _f: PhantomData<F>,
}

impl<F: FnPtr> core::fmt::Debug for Hook<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hook")
            .field("set", &!self.ptr.load(Ordering::Relaxed).is_null())
            .finish()
    }
}

impl<F: FnPtr> Default for Hook<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: FnPtr> Hook<F> {
    /// An empty slot.
    pub const fn new() -> Self {
        Hook {
            ptr: AtomicPtr::new(null_mut()),
            _f: PhantomData,
        }
    }

    /// Installs `f` (Release: whatever the installer wrote before is
    /// visible to the thread that calls it).
    pub fn set(&self, f: F) {
        self.ptr.store(f.to_raw(), Ordering::Release);
    }

    /// The installed function, if any.
    #[inline]
    pub fn get(&self) -> Option<F> {
        let p = self.ptr.load(Ordering::Acquire);
        if p.is_null() {
            None
        } else {
            // SAFETY: only `set` stores a non-null pointer, from an `F`.
            Some(unsafe { F::from_raw(p) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Hook;

    fn seven(x: u32) -> u32 {
        x + 7
    }

    #[test]
    fn empty_until_set_then_returns_the_function() {
        static H: Hook<fn(u32)> = Hook::new();
        assert!(H.get().is_none());
        fn noop(_: u32) {}
        H.set(noop);
        assert!(H.get().is_some());
    }

    #[test]
    fn round_trip_keeps_the_function() {
        static H: Hook<fn(u32, u32)> = Hook::new();
        static OUT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        fn store(a: u32, b: u32) {
            OUT.store(seven(a) * b, std::sync::atomic::Ordering::Relaxed);
        }
        H.set(store);
        (H.get().unwrap())(1, 3);
        assert_eq!(OUT.load(std::sync::atomic::Ordering::Relaxed), 24);
    }
}
