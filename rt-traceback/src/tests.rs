use super::*;

/// The calling thread's stack bounds.
fn thread_stack() -> (usize, usize) {
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread, which
    // is destroyed after the two fields are read.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
        let mut addr = core::ptr::null_mut();
        let mut size = 0;
        assert_eq!(libc::pthread_attr_getstack(&attr, &mut addr, &mut size), 0);
        libc::pthread_attr_destroy(&mut attr);
        (addr as usize, addr as usize + size)
    }
}

#[inline(never)]
fn level3(out: &mut Vec<Frame>) {
    let (lo, hi) = thread_stack();
    let mut frames = [Frame::default(); MAX_FRAMES];
    let n = walk(Regs::here(), true, lo, hi, &mut frames);
    out.extend_from_slice(&frames[..n]);
    std::hint::black_box(&out);
}

#[inline(never)]
fn level2(out: &mut Vec<Frame>) {
    level3(out);
    std::hint::black_box(&out);
}

#[inline(never)]
fn level1(out: &mut Vec<Frame>) {
    level2(out);
    std::hint::black_box(&out);
}

fn names(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .flat_map(|f| resolve(f.lookup_pc()))
        .map(|f| f.name)
        .collect()
}

#[test]
fn walk_finds_callers_in_order() {
    let mut v = Vec::new();
    level1(&mut v);
    assert!(v.len() >= 4, "only {} frames", v.len());
    assert!(v[0].exact && !v[1].exact);
    // Stack pointers and CFAs grow towards the caller.
    for w in v.windows(2) {
        assert!(w[1].sp > w[0].sp, "{:x?}", w);
        assert_eq!(w[0].cfa, w[1].sp);
    }
    let n = names(&v);
    let pos = |s: &str| {
        n.iter()
            .position(|x| x.ends_with(s))
            .unwrap_or_else(|| panic!("{s} not in {n:#?}"))
    };
    assert!(pos("tests::level3") < pos("tests::level2"));
    assert!(pos("tests::level2") < pos("tests::level1"));
    assert!(pos("tests::level1") < pos("tests::walk_finds_callers_in_order"));
    for f in &v {
        if f.func != 0 {
            assert!(f.func <= f.lookup_pc());
        }
    }
}

#[test]
fn resolve_gives_file_and_line() {
    let mut v = Vec::new();
    level1(&mut v);
    let funcs = resolve(v[0].lookup_pc());
    let f = funcs
        .iter()
        .find(|f| f.name.ends_with("level3"))
        .expect("level3");
    assert!(f.file.ends_with("rt-traceback/src/tests.rs"), "{}", f.file);
    assert!(f.line > 0);
}

#[test]
fn walk_stays_inside_bounds() {
    // A stack range that does not hold the registers: only the first
    // frame is known, nothing is read.
    let mut frames = [Frame::default(); 8];
    let n = walk(Regs::here(), true, 0x1000, 0x2000, &mut frames);
    assert_eq!(n, 1);
    // A walk from nowhere yields its first frame, unknown, and stops.
    let r = Regs {
        pc: 8,
        sp: 0x1000,
        ..Regs::default()
    };
    let n = walk(r, true, 0x1000, 0x2000, &mut frames);
    assert_eq!(n, 1);
    assert_eq!(frames[0].func, 0);
    // The frame limit holds.
    let (lo, hi) = thread_stack();
    let mut two = [Frame::default(); 2];
    assert_eq!(walk(Regs::here(), true, lo, hi, &mut two), 2);
}

#[test]
fn print_layout() {
    let mut v = Vec::new();
    level1(&mut v);
    // This crate's own functions count as runtime: below level 2 they
    // are hidden.
    let mut hidden = String::new();
    print_frames(&mut hidden, &v, false, 1);
    assert!(!hidden.contains("tests::level"), "{hidden}");
    let mut s = String::new();
    let n = print_frames(&mut s, &v, false, 2);
    assert!(n >= 4, "{s}");
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len() % 2, 0, "{s}");
    for pair in lines.chunks(2) {
        assert!(pair[0].ends_with(")"), "{s}");
        assert!(pair[1].starts_with('\t'), "{s}");
    }
    let i = lines
        .iter()
        .position(|l| l.ends_with("tests::level2()"))
        .expect(&s);
    assert!(lines[i + 1].contains("rt-traceback/src/tests.rs:"), "{s}");
    assert!(lines[i + 1].contains(" +0x"), "{s}");
    // Level 2 adds the frame's addresses.
    let mut s2 = String::new();
    print_frames(&mut s2, &v[..1], true, 2);
    assert!(
        s2.contains(" fp=0x") && s2.contains(" sp=0x") && s2.contains(" pc=0x"),
        "{s2}"
    );
    assert!(s2.ends_with("...additional frames elided...\n"), "{s2}");
}

#[test]
fn created_by_names_the_go_statement() {
    let pc = current_pc();
    let mut s = String::new();
    let mut hidden = String::new();
    print_created_by(&mut hidden, pc, 7, 1);
    assert!(
        hidden.is_empty(),
        "a runtime creator shows at level 2 only: {hidden}"
    );
    print_created_by(&mut s, pc, 7, 2);
    assert!(
        s.starts_with(
            "created by rt_traceback::tests::created_by_names_the_go_statement in goroutine 7\n\t"
        ),
        "{s}"
    );
    assert!(s.contains("rt-traceback/src/tests.rs:"), "{s}");
    let mut none = String::new();
    print_created_by(&mut none, 0, 1, 2);
    assert!(none.is_empty());
}

#[test]
fn runtime_names() {
    assert!(is_runtime("rt_sched::proc::gopark::gopark"));
    assert!(is_runtime("<rt_sched::chan::Chan<T>>::recv"));
    assert!(is_runtime("std::panicking::begin_panic_handler"));
    assert!(is_runtime("core::ops::function::FnOnce::call_once"));
    assert!(is_runtime(
        "<core::panic::unwind_safe::AssertUnwindSafe<F> as core::ops::function::FnOnce<()>>::call_once"
    ));
    assert!(is_runtime("app::__rt_main_main"));
    assert!(!is_runtime("rt_demo::main"));
    assert!(!is_runtime("<app::Server as app::Handler>::serve"));
    assert!(!is_runtime("std::io::stdio::print_to"));
}

#[test]
fn report_stack_is_another_stack() {
    let here = Regs::here().sp;
    let mut there = 0;
    on_report_stack(|| there = Regs::here().sp);
    assert_ne!(there, 0);
    assert!(there.abs_diff(here) > 1 << 20, "{here:#x} {there:#x}");
    // A panic inside stays inside.
    on_report_stack(|| panic!("inside the report stack"));
    // Nested use runs on the current stack.
    let mut inner = 0;
    on_report_stack(|| on_report_stack(|| inner = 1));
    assert_eq!(inner, 1);
}
