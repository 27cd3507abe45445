//! Seeded random programs over rt's primitives, every outcome checked.
//!
//! `rt-demo torture SEED [SIZE] [plan]` turns SEED into a *plan* — which
//! goroutines exist, how each is started, which channels (buffered or not)
//! each one sends on or receives from, with which operations, in which
//! order — and then runs it. The plan is a pure function of SEED and SIZE
//! (a splitmix64 generator written below, nothing from the runtime), so a
//! seed replays the same program; only the interleaving differs from run to
//! run. `plan` as a third argument prints the plan to stderr first.
//!
//! ## What a program contains
//! * channels with random capacities (unbuffered ones are the most common);
//! * producers, whose steps are plain `send`s, `try_send` retried until it
//!   goes through, or a `select` over one to three send cases that blocks,
//!   has a `default` case (retried) or an `after(..)` timer case (retried);
//! * consumers, which drain a set of channels until every one is closed and
//!   empty, choosing per iteration between `recv` (only once a single channel
//!   is left open), a round of `try_recv`, and a `select` over every open
//!   channel (blocking, with `default`, or with a timer case);
//! * mixed goroutines, whose every send is a `select` that also has receive
//!   cases for all the channels they consume (and maybe a timer or a
//!   `default`), and which drain those channels once their sends are done;
//! * for each channel one closer: `main`, a goroutine of its own, or
//!   whichever of its producers finishes last; it closes only once every
//!   producer of the channel is done, so no send ever meets a closed channel
//!   by accident;
//! * panic testers, which wait until a channel is closed and then check, in
//!   spawned goroutines, that `send`, a `select` send (blocking and with
//!   `default`) and a second `close` panic with Go's messages, and that
//!   `try_send` hands the value back;
//! * workers that bump `Mutex`-protected counters (a read, maybe a
//!   `gosched`, then a write: a broken mutex loses increments), sometimes
//!   through `try_lock`, and may start and wait for a child of their own;
//! * one or two goroutines that change `GOMAXPROCS` a few times and put the
//!   original value back;
//! * `gosched` and short `sleep`s sprinkled over all of them.
//!
//! Goroutines are started with `spawn` and joined, with `go` and counted by a
//! `WaitGroup`, or with `spawn` whose handle is dropped (also counted by the
//! group). Each returns a [`Report`]: what it sent, what it received in which
//! order, how many increments it made, and anything it found wrong.
//!
//! ## Why it always ends (when the runtime is right)
//! Every receiver waits on all of its still-open channels at once (a plain
//! `recv` only when one is left), so a sender blocked on a channel always has
//! a receiver that will come for its value; closers wait only for producers;
//! and every unbuffered channel has at least one pure consumer that sometimes
//! parks, so senders that only poll (`try_send`, `select` with `default`)
//! meet a parked receiver eventually. A watchdog thread (a plain thread, so
//! the runtime's own deadlock check still works) reports a run that has not
//! finished after 10 s + 10 s × SIZE as a hang, with every goroutine's
//! progress and the runtime's goroutine dump, and exits 1.
//!
//! ## What is checked
//! Every message carries (channel, producer, sequence number, checksum, a
//! heap tail derived from the checksum); receivers verify it on arrival. At
//! the end, per channel, the messages received must be exactly those sent
//! (nothing lost, duplicated, corrupted or sent to another channel); each
//! consumer must have seen each producer's messages on a channel in
//! increasing order (all Go promises when several receivers share a
//! channel); a `None` may only come from a closed channel; each channel was
//! closed once and is empty; counters equal the increments made; joined
//! goroutines returned their own report; every `WaitGroup`-counted goroutine
//! had filed its report when `wait` returned; `GOMAXPROCS` is back to its
//! value; and the goroutine count falls back to where it started.
//!
//! Success prints `torture ok seed=SEED ops=N` (N messages delivered) and
//! returns 0; a failed check prints `torture FAILED seed=SEED: …` on stderr
//! and returns 1.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rt_sched::{Chan, JoinHandle, Mutex, Select, WaitGroup};
use rt_sched::{RecvToken, TryRecvError, TrySendError};

// ---------------------------------------------------------------------------
// Deterministic randomness

/// splitmix64's output function: a bijection on u64 that mixes every bit.
fn fmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of two words (not symmetric).
fn hash2(a: u64, b: u64) -> u64 {
    fmix(a ^ fmix(b.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// splitmix64: the generator behind the plan and behind each goroutine's
/// run-time choices.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(hash2(seed, 0x7047_7572_6521))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        fmix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `1/n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    /// An index drawn with the given weights (at least one is non-zero).
    fn weighted(&mut self, w: &[u32]) -> usize {
        let total: u32 = w.iter().sum();
        let mut x = self.below(total as usize) as u32;
        for (i, &wi) in w.iter().enumerate() {
            if x < wi {
                return i;
            }
            x -= wi;
        }
        unreachable!("weights sum to {total}")
    }

    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }

    /// `k` distinct values of `0..n`, in random order.
    fn subset(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        self.shuffle(&mut all);
        all.truncate(k);
        all
    }
}

// ---------------------------------------------------------------------------
// Messages

/// Producer id of the values the panic testers try to send on closed
/// channels; no receiver may ever see one.
const POISON: u32 = u32::MAX;

/// What travels on the channels. `sum` is a hash of the seed and the other
/// three fields; `tail` (0 to 3 words, so sometimes a heap allocation) is
/// derived from `sum`.
#[derive(Debug, PartialEq, Eq)]
struct Msg {
    chan: u32,
    prod: u32,
    seq: u32,
    sum: u64,
    tail: Vec<u64>,
}

fn msg_sum(seed: u64, chan: u32, prod: u32, seq: u32) -> u64 {
    hash2(hash2(hash2(seed, chan as u64), prod as u64), seq as u64)
}

fn make_msg(seed: u64, chan: usize, prod: u32, seq: u32) -> Msg {
    let chan = chan as u32;
    let sum = msg_sum(seed, chan, prod, seq);
    let tail = (0..(sum >> 62)).map(|i| hash2(sum, i)).collect();
    Msg {
        chan,
        prod,
        seq,
        sum,
        tail,
    }
}

/// Whether `m` is intact: its checksum and tail match its fields.
fn msg_intact(seed: u64, m: &Msg) -> bool {
    let sum = msg_sum(seed, m.chan, m.prod, m.seq);
    sum == m.sum
        && m.tail.len() as u64 == sum >> 62
        && m.tail
            .iter()
            .enumerate()
            .all(|(i, &t)| t == hash2(sum, i as u64))
}

// ---------------------------------------------------------------------------
// The plan

/// How a goroutine is started and how its report comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Launch {
    /// `spawn`, joined by main: the report is the join value.
    Join,
    /// `go`: the report goes to a shared slot, then the `WaitGroup`.
    Go,
    /// `spawn` with the handle dropped at once: as `Go`.
    Dropped,
}

/// Who closes a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closer {
    /// main, after waiting for the channel's producers.
    Main,
    /// a goroutine of its own (a `Role::Closer`), after waiting likewise.
    Goroutine,
    /// whichever producer finishes last (a shared countdown).
    LastProducer,
}

/// Something done between the main operations.
#[derive(Debug, Clone, Copy)]
enum Extra {
    Nothing,
    Gosched,
    /// Sleep this many microseconds.
    Sleep(u32),
    /// Bump a counter under its mutex: read, maybe `gosched`, write. With
    /// `try_first` the lock is taken by polling `try_lock`.
    Lock {
        counter: usize,
        yield_inside: bool,
        try_first: bool,
    },
}

/// How a `select` waits when no case is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// `select()`: parks until a case fires.
    Block,
    /// `try_select()`: the `default` case; the caller retries.
    Default,
    /// An extra `after(µs)` case; when it fires the caller retries.
    Timer(u32),
}

/// One message sent by a producer (or a mixed goroutine).
#[derive(Debug, Clone)]
enum SendOp {
    Send(usize),
    TrySend(usize),
    /// A select over send cases on these channels (one of them gets it).
    Select(Vec<usize>, Wait),
}

#[derive(Debug, Clone)]
struct Step {
    op: SendOp,
    extra: Extra,
}

/// Receive operations a receiver chooses from, per iteration.
const R_RECV: usize = 0;
const R_TRY: usize = 1;
const R_SELECT: usize = 2;
const R_DEFAULT: usize = 3;
const R_TIMER: usize = 4;

/// How a receiver behaves: weights for each receive operation (indexed by
/// the `R_*` constants), the timer case's duration, the odds of the extras
/// after each iteration, and the seed of its run-time choices.
#[derive(Debug, Clone)]
struct RecvStyle {
    weights: [u32; 5],
    timer_us: u32,
    gosched_one_in: usize,
    sleep_one_in: usize,
    lock_one_in: usize,
    counter: usize,
    /// With a single channel: receive with `for v in &ch` instead.
    range: bool,
    seed: u64,
}

impl RecvStyle {
    /// Whether the receiver will sometimes park on its channels.
    fn parks(&self) -> bool {
        self.weights[R_RECV] + self.weights[R_SELECT] + self.weights[R_TIMER] > 0
    }
}

/// What a panic tester checks on a closed channel.
#[derive(Debug, Clone, Copy)]
enum PanicKind {
    /// `send` panics with "send on closed channel".
    Send,
    /// A blocking `select` with a send case panics likewise.
    SelectSend,
    /// So does a `select` with a `default` case.
    SelectSendDefault,
    /// A second `close` panics with "close of closed channel".
    Close,
    /// `try_send` returns `Closed` with the value intact (no panic).
    TrySend,
    /// On a fresh unbuffered channel: a goroutine blocks in `send`, then the
    /// channel is closed; the sender must panic "send on closed channel".
    BlockedSend,
    /// The same with the sender blocked in a `select`.
    BlockedSelectSend,
}

#[derive(Debug, Clone)]
enum Role {
    Producer {
        steps: Vec<Step>,
    },
    Consumer {
        ins: Vec<usize>,
        style: RecvStyle,
    },
    /// Sends with selects that also receive from `ins`, then drains `ins`.
    Mixed {
        steps: Vec<Step>,
        ins: Vec<usize>,
        style: RecvStyle,
    },
    /// Waits for `chan`'s producers, does `pre`, closes it.
    Closer {
        chan: usize,
        pre: Extra,
    },
    /// Runs `ops`; `child` is a nested worker (its ops, and whether it is
    /// joined rather than awaited through a `WaitGroup`).
    Worker {
        ops: Vec<Extra>,
        child: Option<(Vec<Extra>, bool)>,
    },
    /// Sets GOMAXPROCS to each value and sleeps the µs given.
    Flipper {
        changes: Vec<(i32, u32)>,
    },
    Panicker {
        chan: usize,
        kinds: Vec<PanicKind>,
    },
}

impl Role {
    fn name(&self) -> &'static str {
        match self {
            Role::Producer { .. } => "producer",
            Role::Consumer { .. } => "consumer",
            Role::Mixed { .. } => "mixed",
            Role::Closer { .. } => "closer",
            Role::Worker { .. } => "worker",
            Role::Flipper { .. } => "flipper",
            Role::Panicker { .. } => "panicker",
        }
    }

    fn steps(&self) -> &[Step] {
        match self {
            Role::Producer { steps } | Role::Mixed { steps, .. } => steps,
            _ => &[],
        }
    }

    /// The channels this goroutine may send on, without repeats.
    fn outs(&self) -> Vec<usize> {
        let mut v = Vec::new();
        for s in self.steps() {
            match &s.op {
                SendOp::Send(c) | SendOp::TrySend(c) => v.push(*c),
                SendOp::Select(cs, _) => v.extend_from_slice(cs),
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    fn ins(&self) -> &[usize] {
        match self {
            Role::Consumer { ins, .. } | Role::Mixed { ins, .. } => ins,
            _ => &[],
        }
    }
}

#[derive(Debug)]
struct GPlan {
    role: Role,
    launch: Launch,
}

#[derive(Debug)]
struct ChanPlan {
    cap: usize,
    closer: Closer,
    /// Goroutines that send on it.
    producers: Vec<usize>,
}

#[derive(Debug)]
struct Plan {
    seed: u64,
    size: usize,
    counters: usize,
    chans: Vec<ChanPlan>,
    gs: Vec<GPlan>,
    /// The order main starts the goroutines in, and what it does after
    /// starting each.
    spawn_order: Vec<(usize, Extra)>,
    /// The channels main closes, in order.
    main_closes: Vec<usize>,
    /// The order main joins the `Launch::Join` goroutines in.
    join_order: Vec<usize>,
    /// Messages the program delivers (one per send step).
    messages: usize,
}

fn gen_extra(r: &mut Rng, counters: usize) -> Extra {
    match r.below(100) {
        0..=69 => Extra::Nothing,
        70..=84 => Extra::Gosched,
        85..=87 => Extra::Sleep(r.range(1, 100) as u32),
        _ => Extra::Lock {
            counter: r.below(counters),
            yield_inside: r.one_in(3),
            try_first: r.one_in(4),
        },
    }
}

fn gen_wait(r: &mut Rng) -> Wait {
    match r.below(3) {
        0 => Wait::Block,
        1 => Wait::Default,
        _ => Wait::Timer(r.pick(&[20, 50, 100, 300, 1000])),
    }
}

fn gen_style(r: &mut Rng, counters: usize) -> RecvStyle {
    let mut weights = [0u32; 5];
    for w in &mut weights {
        *w = r.below(4) as u32;
    }
    if weights.iter().sum::<u32>() == 0 {
        weights[R_SELECT] = 1;
    }
    RecvStyle {
        weights,
        timer_us: r.pick(&[20, 50, 100, 300, 1000]),
        gosched_one_in: r.pick(&[4, 16, 64]),
        sleep_one_in: r.pick(&[64, 256, 1024]),
        lock_one_in: r.pick(&[8, 32, 128]),
        counter: r.below(counters),
        range: r.one_in(3),
        seed: r.next(),
    }
}

/// The send steps of a producer (`mixed`: only selects) over `outs`.
fn gen_steps(r: &mut Rng, outs: &[usize], n: usize, mixed: bool, counters: usize) -> Vec<Step> {
    (0..n)
        .map(|_| {
            let kind = if mixed { 2 } else { r.below(3) };
            let op = match kind {
                0 => SendOp::Send(r.pick(outs)),
                1 => SendOp::TrySend(r.pick(outs)),
                _ => {
                    let k = r.range(1, outs.len().min(3));
                    let mut cs: Vec<usize> = r
                        .subset(outs.len(), k)
                        .into_iter()
                        .map(|i| outs[i])
                        .collect();
                    cs.sort_unstable();
                    // Sometimes two cases on one channel (with the same
                    // message: only one of them may go through).
                    if r.one_in(8) {
                        cs.push(cs[0]);
                    }
                    SendOp::Select(cs, gen_wait(r))
                }
            };
            Step {
                op,
                extra: gen_extra(r, counters),
            }
        })
        .collect()
}

fn gen_launch(r: &mut Rng) -> Launch {
    match r.below(5) {
        0 | 1 => Launch::Join,
        2 | 3 => Launch::Go,
        _ => Launch::Dropped,
    }
}

/// Builds the program for `seed` and `size`: a pure function of both.
fn make_plan(seed: u64, size: usize) -> Plan {
    let mut r = Rng::new(seed);
    let s = size;
    let counters = r.range(1, 3);
    let nchan = r.range(1, 3 + 3 * s);
    let caps: Vec<usize> = (0..nchan)
        .map(|_| r.pick(&[0, 0, 0, 0, 1, 1, 2, 3, 4, 8, 32]))
        .collect();
    let mut gs: Vec<GPlan> = Vec::new();

    // Producers.
    for _ in 0..r.range(1, 2 + 4 * s) {
        let k = r.range(1, nchan.min(3));
        let outs = r.subset(nchan, k);
        let n = r.range(0, 300 * s);
        let steps = gen_steps(&mut r, &outs, n, false, counters);
        gs.push(GPlan {
            role: Role::Producer { steps },
            launch: gen_launch(&mut r),
        });
    }
    // Mixed goroutines: disjoint in and out channels.
    if nchan >= 2 {
        for _ in 0..r.range(0, 1 + 2 * s) {
            let mut all = r.subset(nchan, nchan);
            let split = r.range(1, nchan - 1);
            let mut outs = all.split_off(split);
            let mut ins = all;
            outs.truncate(3);
            ins.truncate(3);
            ins.sort_unstable();
            let n = r.range(0, 150 * s);
            let steps = gen_steps(&mut r, &outs, n, true, counters);
            let style = gen_style(&mut r, counters);
            gs.push(GPlan {
                role: Role::Mixed { steps, ins, style },
                launch: gen_launch(&mut r),
            });
        }
    }
    // Pure consumers; every channel gets at least one.
    let first_consumer = gs.len();
    for _ in 0..r.range(1, 3 + 2 * s) {
        let k = r.range(1, nchan.min(3));
        let mut ins = r.subset(nchan, k);
        ins.sort_unstable();
        let style = gen_style(&mut r, counters);
        gs.push(GPlan {
            role: Role::Consumer { ins, style },
            launch: gen_launch(&mut r),
        });
    }
    let nconsumers = gs.len() - first_consumer;
    for (c, &cap) in caps.iter().enumerate() {
        let consumers: Vec<usize> = (first_consumer..gs.len())
            .filter(|&g| gs[g].role.ins().contains(&c))
            .collect();
        let pick = first_consumer + r.below(nconsumers);
        if consumers.is_empty() {
            if let Role::Consumer { ins, .. } = &mut gs[pick].role {
                ins.push(c);
                ins.sort_unstable();
            }
        }
        // An unbuffered channel needs a receiver that parks now and then, or
        // senders that only poll could never meet one.
        let consumers: Vec<usize> = (first_consumer..gs.len())
            .filter(|&g| gs[g].role.ins().contains(&c))
            .collect();
        let parks = consumers.iter().any(|&g| match &gs[g].role {
            Role::Consumer { style, .. } => style.parks(),
            _ => false,
        });
        if cap == 0 && !parks {
            if let Role::Consumer { style, .. } = &mut gs[consumers[0]].role {
                style.weights[R_SELECT] = 1;
            }
        }
    }
    // Workers.
    for _ in 0..r.range(0, 1 + s) {
        let ops = (0..r.range(1, 20))
            .map(|_| match r.below(4) {
                0 => gen_extra(&mut r, counters),
                _ => Extra::Lock {
                    counter: r.below(counters),
                    yield_inside: r.one_in(3),
                    try_first: r.one_in(4),
                },
            })
            .collect();
        let child = r.one_in(2).then(|| {
            let ops = (0..r.range(1, 10))
                .map(|_| Extra::Lock {
                    counter: r.below(counters),
                    yield_inside: r.one_in(2),
                    try_first: r.one_in(4),
                })
                .collect();
            (ops, r.one_in(2))
        });
        gs.push(GPlan {
            role: Role::Worker { ops, child },
            launch: gen_launch(&mut r),
        });
    }
    // GOMAXPROCS flippers: none, one, or two at once.
    let nflip = r.pick(&[0, 1, 1, 1, 1, 2]);
    for _ in 0..nflip {
        let changes = (0..r.range(1, 5))
            .map(|_| (r.range(1, 4) as i32, r.range(10, 300) as u32))
            .collect();
        gs.push(GPlan {
            role: Role::Flipper { changes },
            launch: gen_launch(&mut r),
        });
    }
    // Closers, producer lists and panic testers.
    let mut chans = Vec::new();
    for (c, &cap) in caps.iter().enumerate() {
        let producers: Vec<usize> = (0..gs.len())
            .filter(|&g| gs[g].role.outs().contains(&c))
            .collect();
        let mut closer = r.pick(&[Closer::Main, Closer::Goroutine, Closer::LastProducer]);
        if closer == Closer::LastProducer && producers.is_empty() {
            closer = Closer::Main;
        }
        if closer == Closer::Goroutine {
            let pre = gen_extra(&mut r, counters);
            gs.push(GPlan {
                role: Role::Closer { chan: c, pre },
                launch: gen_launch(&mut r),
            });
        }
        if r.one_in(3) {
            let all = [
                PanicKind::Send,
                PanicKind::SelectSend,
                PanicKind::SelectSendDefault,
                PanicKind::Close,
                PanicKind::TrySend,
                PanicKind::BlockedSend,
                PanicKind::BlockedSelectSend,
            ];
            let kinds = (0..r.range(1, 3)).map(|_| r.pick(&all)).collect();
            gs.push(GPlan {
                role: Role::Panicker { chan: c, kinds },
                launch: gen_launch(&mut r),
            });
        }
        chans.push(ChanPlan {
            cap,
            closer,
            producers,
        });
    }
    let mut order: Vec<usize> = (0..gs.len()).collect();
    r.shuffle(&mut order);
    let spawn_order = order
        .into_iter()
        .map(|g| (g, gen_extra(&mut r, counters)))
        .collect();
    let mut main_closes: Vec<usize> = (0..nchan)
        .filter(|&c| chans[c].closer == Closer::Main)
        .collect();
    r.shuffle(&mut main_closes);
    let mut join_order: Vec<usize> = (0..gs.len())
        .filter(|&g| gs[g].launch == Launch::Join)
        .collect();
    r.shuffle(&mut join_order);
    let messages = gs.iter().map(|g| g.role.steps().len()).sum();
    Plan {
        seed,
        size,
        counters,
        chans,
        gs,
        spawn_order,
        main_closes,
        join_order,
        messages,
    }
}

// ---------------------------------------------------------------------------
// Running it

/// What a goroutine hands back.
#[derive(Debug, Default)]
struct Report {
    /// The goroutine's index in the plan.
    id: usize,
    /// `token(seed, id)`: shows a join returned this goroutine's own value.
    token: u64,
    /// Per channel: messages this goroutine sent on it.
    sent: HashMap<usize, u32>,
    /// (channel, producer, seq) of each message received, in order.
    got: Vec<(u32, u32, u32)>,
    /// Increments made on each counter.
    incs: Vec<u64>,
    /// Everything found wrong along the way.
    errors: Vec<String>,
}

fn token(seed: u64, id: usize) -> u64 {
    hash2(seed ^ 0x706b_656e, id as u64)
}

/// Progress phases shown by the watchdog (top byte of a progress word; the
/// low bits hold a number whose meaning the phase gives).
const P_IDLE: u64 = 0;
const P_SEND: u64 = 1;
const P_RECV: u64 = 2;
const P_WAITPROD: u64 = 3;
const P_WAITCLOSE: u64 = 4;
const P_WORK: u64 = 5;
const P_FLIP: u64 = 6;
const P_PANIC: u64 = 7;
const P_CHILD: u64 = 8;
const P_JOIN: u64 = 9;
const P_WG: u64 = 10;
const P_CHECK: u64 = 11;
const P_DONE: u64 = 12;
const P_SPAWN: u64 = 13;

fn phase_name(p: u64) -> &'static str {
    match p {
        P_IDLE => "not started",
        P_SEND => "sending step",
        P_RECV => "receiving, messages so far",
        P_WAITPROD => "waiting for the producers of channel",
        P_WAITCLOSE => "waiting for the close of channel",
        P_WORK => "working, op",
        P_FLIP => "changing GOMAXPROCS, change",
        P_PANIC => "testing panics, test",
        P_CHILD => "waiting for its child",
        P_JOIN => "joining goroutine",
        P_WG => "waiting on the WaitGroup",
        P_CHECK => "checking",
        P_DONE => "done",
        P_SPAWN => "starting goroutine",
        _ => "?",
    }
}

/// Everything the goroutines share.
struct World {
    seed: u64,
    chans: Vec<Chan<Msg>>,
    closers: Vec<Closer>,
    /// Closed right after the matching channel (for the panic testers).
    closed_sig: Vec<Chan<()>>,
    /// Per channel: its producers still sending (for `Main` and `Goroutine`
    /// closers).
    prod_wg: Vec<WaitGroup>,
    /// Per channel: its producers still sending (for `LastProducer`).
    remaining: Vec<AtomicUsize>,
    /// Per channel: how many times it was closed by its closer.
    closes: Vec<AtomicU32>,
    counters: Vec<Mutex<u64>>,
    /// Reports of the `Go` and `Dropped` goroutines.
    slots: Mutex<Vec<Option<Report>>>,
    /// Counts the `Go` and `Dropped` goroutines.
    wg: WaitGroup,
    /// One word per goroutine (and one for main) for the watchdog.
    progress: Vec<AtomicU64>,
    finished: AtomicBool,
    orig_procs: i32,
    flippers: usize,
}

impl World {
    fn mark(&self, id: usize, phase: u64, n: usize) {
        self.progress[id].store(phase << 56 | n as u64, Ordering::Relaxed);
    }

    /// Closes channel `c` (its closer's job) and says so to the panic
    /// testers.
    fn close(&self, c: usize, rep: &mut Report) {
        if self.closes[c].fetch_add(1, Ordering::AcqRel) != 0 {
            rep.errors
                .push(format!("channel {c} closed twice by the plan"));
        }
        self.chans[c].close();
        self.closed_sig[c].close();
    }

    /// A producer of each of `outs` is done sending.
    fn producer_done(&self, outs: &[usize], rep: &mut Report) {
        for &c in outs {
            if self.closers[c] == Closer::LastProducer {
                if self.remaining[c].fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.close(c, rep);
                }
            } else {
                self.prod_wg[c].done();
            }
        }
    }

    /// Checks a message received on channel `c` and records it.
    fn accept(&self, c: usize, m: Msg, rep: &mut Report) {
        if m.chan as usize != c {
            rep.errors.push(format!(
                "message for channel {} arrived on {c}: {m:?}",
                m.chan
            ));
        } else if m.prod == POISON {
            rep.errors.push(format!(
                "channel {c} delivered a value sent after it was closed: {m:?}"
            ));
        } else if !msg_intact(self.seed, &m) {
            rep.errors
                .push(format!("corrupted message on channel {c}: {m:?}"));
        }
        rep.got.push((m.chan, m.prod, m.seq));
    }

    /// A receive on `c` said closed-and-drained: check that it was closed
    /// and stays so, and stop receiving from it.
    fn on_closed(&self, c: usize, open: &mut Vec<usize>, rep: &mut Report) {
        open.retain(|&x| x != c);
        if self.closes[c].load(Ordering::Acquire) == 0 {
            rep.errors.push(format!(
                "receive on channel {c} saw it closed before anyone closed it"
            ));
        }
        match self.chans[c].try_recv() {
            Err(TryRecvError::Closed) => {}
            Ok(m) => rep.errors.push(format!(
                "channel {c} gave {m:?} after reporting closed and drained"
            )),
            Err(TryRecvError::Empty) => rep.errors.push(format!(
                "try_recv on channel {c} would block after it reported closed"
            )),
        }
    }

    fn extra(&self, e: Extra, rep: &mut Report) {
        match e {
            Extra::Nothing => {}
            Extra::Gosched => rt_sched::gosched(),
            Extra::Sleep(us) => rt_sched::sleep(Duration::from_micros(us as u64)),
            Extra::Lock {
                counter,
                yield_inside,
                try_first,
            } => {
                let m = &self.counters[counter];
                let mut g = if try_first {
                    loop {
                        if let Some(g) = m.try_lock() {
                            break g;
                        }
                        rt_sched::gosched();
                    }
                } else {
                    m.lock()
                };
                // Read, maybe yield, write: increments made by goroutines
                // that got in meanwhile would be overwritten.
                let v = *g;
                if yield_inside {
                    rt_sched::gosched();
                }
                *g = v + 1;
                drop(g);
                rep.incs[counter] += 1;
            }
        }
    }
}

/// Between retries of a poll that found nothing: yield, and now and then
/// sleep a little (which also lets timers run).
fn backoff(rng: &mut Rng, idle: &mut u32) {
    *idle += 1;
    if *idle & 15 == 0 {
        rt_sched::sleep(Duration::from_micros(rng.range(1, 30) as u64));
    } else {
        rt_sched::gosched();
    }
}

/// Outcome of one receive attempt.
enum Got {
    /// A value (or `None`: closed and drained) from a channel.
    From(usize, Option<Msg>),
    /// Nothing: the `default` case, the timer, or an empty `try_recv`
    /// round.
    Nothing,
}

/// Now and then one channel of `open`, to appear in a select twice (Go
/// allows two cases on one channel; the select must still take one value).
fn maybe_dup(rng: &mut Rng, open: &[usize]) -> Option<usize> {
    (!open.is_empty() && rng.one_in(8)).then(|| open[rng.below(open.len())])
}

/// A select over receive cases on every channel of `open` (and a second one
/// on `dup`), waiting as `wait` says.
fn select_recv(w: &World, open: &[usize], dup: Option<usize>, wait: Wait, rep: &mut Report) -> Got {
    let timer = match wait {
        Wait::Timer(us) => Some(rt_sched::after(Duration::from_micros(us as u64))),
        _ => None,
    };
    let mut s = Select::new();
    let toks: Vec<(usize, RecvToken<Msg>)> = open
        .iter()
        .chain(dup.iter())
        .map(|&c| (c, s.recv(&w.chans[c])))
        .collect();
    let ttok = timer.as_ref().map(|t| s.recv(t));
    let fired = if wait == Wait::Default {
        match s.try_select() {
            Some(i) => i,
            None => return Got::Nothing,
        }
    } else {
        s.select()
    };
    for (c, tok) in toks {
        if tok.index == fired {
            return Got::From(c, s.received(tok));
        }
    }
    timer_fired(&mut s, ttok, fired, rep);
    Got::Nothing
}

/// The case that fired was none of the channel cases: it must be the timer,
/// and the timer must have delivered its value.
fn timer_fired(s: &mut Select<'_>, ttok: Option<RecvToken<()>>, fired: usize, rep: &mut Report) {
    match ttok {
        Some(t) if t.index == fired => {
            if s.received(t).is_none() {
                rep.errors.push("timer channel reported closed".into());
            }
        }
        _ => rep
            .errors
            .push(format!("select fired case {fired}, which does not exist")),
    }
}

/// Receives from `ins` until every one is closed and drained.
fn consume(w: &World, id: usize, ins: &[usize], style: &RecvStyle, rep: &mut Report) {
    let mut rng = Rng::new(style.seed);
    let mut open = ins.to_vec();
    let mut idle = 0;
    w.mark(id, P_RECV, 0);
    if style.range && open.len() == 1 {
        let c = open[0];
        for m in &w.chans[c] {
            w.accept(c, m, rep);
            w.mark(id, P_RECV, rep.got.len());
            if rng.one_in(style.gosched_one_in) {
                rt_sched::gosched();
            }
        }
        w.on_closed(c, &mut open, rep);
    }
    while !open.is_empty() {
        let got = match rng.weighted(&style.weights) {
            // A plain blocking receive only when one channel is left: a
            // receiver blocked on one channel while a producer waits on
            // another of its channels could deadlock the program.
            R_RECV if open.len() == 1 => Got::From(open[0], w.chans[open[0]].recv()),
            R_TRY => {
                let start = rng.below(open.len());
                let mut got = Got::Nothing;
                for k in 0..open.len() {
                    let c = open[(start + k) % open.len()];
                    match w.chans[c].try_recv() {
                        Ok(v) => got = Got::From(c, Some(v)),
                        Err(TryRecvError::Closed) => got = Got::From(c, None),
                        Err(TryRecvError::Empty) => continue,
                    }
                    break;
                }
                got
            }
            R_DEFAULT => select_recv(w, &open, maybe_dup(&mut rng, &open), Wait::Default, rep),
            R_TIMER => {
                let dup = maybe_dup(&mut rng, &open);
                select_recv(w, &open, dup, Wait::Timer(style.timer_us), rep)
            }
            _ => select_recv(w, &open, maybe_dup(&mut rng, &open), Wait::Block, rep),
        };
        match got {
            Got::From(c, Some(m)) => {
                w.accept(c, m, rep);
                w.mark(id, P_RECV, rep.got.len());
                idle = 0;
                if rng.one_in(16) {
                    let (len, cap) = (w.chans[c].len(), w.chans[c].cap());
                    if len > cap {
                        rep.errors
                            .push(format!("channel {c} holds {len} values, cap {cap}"));
                    }
                }
            }
            Got::From(c, None) => w.on_closed(c, &mut open, rep),
            Got::Nothing => backoff(&mut rng, &mut idle),
        }
        if rng.one_in(style.gosched_one_in) {
            rt_sched::gosched();
        }
        if rng.one_in(style.sleep_one_in) {
            rt_sched::sleep(Duration::from_micros(rng.range(1, 50) as u64));
        }
        if rng.one_in(style.lock_one_in) {
            w.extra(
                Extra::Lock {
                    counter: style.counter,
                    yield_inside: rng.one_in(2),
                    try_first: rng.one_in(4),
                },
                rep,
            );
        }
    }
}

/// Sends one message on one of `cs` with a select, retrying after a timer
/// or `default`. A mixed goroutine also has receive cases for `open` (the
/// channels it consumes that are still open) and handles what they bring.
fn select_send(
    w: &World,
    id: usize,
    cs: &[usize],
    wait: Wait,
    open: &mut Vec<usize>,
    rng: &mut Rng,
    rep: &mut Report,
) {
    let mut idle = 0;
    loop {
        let timer = match wait {
            Wait::Timer(us) => Some(rt_sched::after(Duration::from_micros(us as u64))),
            _ => None,
        };
        let mut s = Select::new();
        let mut sends = Vec::with_capacity(cs.len());
        for &c in cs {
            let seq = rep.sent.get(&c).copied().unwrap_or(0);
            sends.push((c, s.send(&w.chans[c], make_msg(w.seed, c, id as u32, seq))));
        }
        let dup = maybe_dup(rng, open);
        let toks: Vec<(usize, RecvToken<Msg>)> = open
            .iter()
            .chain(dup.iter())
            .map(|&c| (c, s.recv(&w.chans[c])))
            .collect();
        let ttok = timer.as_ref().map(|t| s.recv(t));
        let fired = if wait == Wait::Default {
            match s.try_select() {
                Some(i) => i,
                None => {
                    drop(s);
                    backoff(rng, &mut idle);
                    continue;
                }
            }
        } else {
            s.select()
        };
        if let Some(&(c, _)) = sends.iter().find(|&&(_, i)| i == fired) {
            *rep.sent.entry(c).or_insert(0) += 1;
            return;
        }
        if let Some((c, tok)) = toks.into_iter().find(|(_, t)| t.index == fired) {
            let v = s.received(tok);
            drop(s);
            match v {
                Some(m) => w.accept(c, m, rep),
                None => w.on_closed(c, open, rep),
            }
            continue;
        }
        timer_fired(&mut s, ttok, fired, rep);
    }
}

/// Runs the send steps of a producer or mixed goroutine, then tells the
/// closers.
fn produce(w: &World, id: usize, steps: &[Step], open: &mut Vec<usize>, rep: &mut Report) {
    let mut rng = Rng::new(hash2(w.seed, id as u64));
    for (k, step) in steps.iter().enumerate() {
        w.mark(id, P_SEND, k);
        match &step.op {
            SendOp::Send(c) => {
                let seq = rep.sent.get(c).copied().unwrap_or(0);
                w.chans[*c].send(make_msg(w.seed, *c, id as u32, seq));
                *rep.sent.entry(*c).or_insert(0) += 1;
            }
            SendOp::TrySend(c) => {
                let seq = rep.sent.get(c).copied().unwrap_or(0);
                let mut m = make_msg(w.seed, *c, id as u32, seq);
                let mut idle = 0;
                loop {
                    match w.chans[*c].try_send(m) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => {
                            if back.seq != seq || !msg_intact(w.seed, &back) {
                                rep.errors
                                    .push(format!("try_send handed back another value: {back:?}"));
                            }
                            m = back;
                            backoff(&mut rng, &mut idle);
                        }
                        Err(TrySendError::Closed(_)) => {
                            rep.errors.push(format!(
                                "try_send: channel {c} closed while its producer {id} sends"
                            ));
                            break;
                        }
                    }
                }
                *rep.sent.entry(*c).or_insert(0) += 1;
            }
            SendOp::Select(cs, wait) => select_send(w, id, cs, *wait, open, &mut rng, rep),
        }
        w.extra(step.extra, rep);
    }
}

/// Waits until channel `c` is closed (the panic testers' cue).
fn wait_closed(w: &World, c: usize, rep: &mut Report) {
    if w.closed_sig[c].recv().is_some() {
        rep.errors.push("close signal carried a value".into());
    }
}

/// Joins `h`, which must have panicked with `want`.
fn expect_panic(h: JoinHandle<()>, want: &str, what: &str, rep: &mut Report) {
    match h.join() {
        Ok(()) => rep.errors.push(format!("{what}: did not panic")),
        Err(p) => {
            let msg = rt_sched::panic_message(&*p);
            if msg != want {
                rep.errors
                    .push(format!("{what}: panicked with {msg:?}, want {want:?}"));
            }
        }
    }
}

fn panic_tests(w: &World, id: usize, c: usize, kinds: &[PanicKind], rep: &mut Report) {
    w.mark(id, P_WAITCLOSE, c);
    wait_closed(w, c, rep);
    for (k, &kind) in kinds.iter().enumerate() {
        w.mark(id, P_PANIC, k);
        let poison = make_msg(w.seed, c, POISON, k as u32);
        let ch = w.chans[c].clone();
        let what = match kind {
            PanicKind::BlockedSend | PanicKind::BlockedSelectSend => {
                format!("{kind:?} on a fresh channel")
            }
            _ => format!("{kind:?} on closed channel {c}"),
        };
        match kind {
            PanicKind::Send => {
                let h = rt_sched::spawn(move || ch.send(poison));
                expect_panic(h, "send on closed channel", &what, rep);
            }
            PanicKind::SelectSend => {
                let h = rt_sched::spawn(move || {
                    let never = Chan::<u8>::new(0);
                    let mut s = Select::new();
                    s.recv(&never);
                    s.send(&ch, poison);
                    s.select();
                });
                expect_panic(h, "send on closed channel", &what, rep);
            }
            PanicKind::SelectSendDefault => {
                let h = rt_sched::spawn(move || {
                    let mut s = Select::new();
                    s.send(&ch, poison);
                    s.try_select();
                });
                expect_panic(h, "send on closed channel", &what, rep);
            }
            PanicKind::Close => {
                let h = rt_sched::spawn(move || ch.close());
                expect_panic(h, "close of closed channel", &what, rep);
            }
            PanicKind::BlockedSend | PanicKind::BlockedSelectSend => {
                let fresh = Chan::<Msg>::new(0);
                let ch = fresh.clone();
                let sel = matches!(kind, PanicKind::BlockedSelectSend);
                let h = rt_sched::spawn(move || {
                    if sel {
                        let never = Chan::<u8>::new(0);
                        let mut s = Select::new();
                        s.recv(&never);
                        s.send(&ch, poison);
                        s.select();
                    } else {
                        ch.send(poison);
                    }
                });
                // Usually the sender is parked by the time of the close;
                // either way it must panic.
                if k & 1 == 0 {
                    rt_sched::gosched();
                } else {
                    rt_sched::sleep(Duration::from_micros(20));
                }
                fresh.close();
                expect_panic(h, "send on closed channel", &what, rep);
                if fresh.try_recv() != Err(TryRecvError::Closed) {
                    rep.errors
                        .push(format!("{what}: the blocked sender's value stayed behind"));
                }
            }
            PanicKind::TrySend => {
                let want = make_msg(w.seed, c, POISON, k as u32);
                match ch.try_send(poison) {
                    Err(TrySendError::Closed(back)) if back == want => {}
                    Err(TrySendError::Closed(back)) => rep
                        .errors
                        .push(format!("{what}: handed back {back:?}, not {want:?}")),
                    other => rep.errors.push(format!("{what}: got {other:?}")),
                }
            }
        }
    }
}

/// Runs `ops` and returns the increments per counter.
fn work(w: &World, id: usize, ops: &[Extra], rep: &mut Report) {
    for (k, &e) in ops.iter().enumerate() {
        w.mark(id, P_WORK, k);
        w.extra(e, rep);
    }
}

/// A goroutine's body: runs its role and returns its report.
fn run_g(w: &Arc<World>, id: usize, role: &Role) -> Report {
    let ncounters = w.counters.len();
    let mut rep = Report {
        id,
        token: token(w.seed, id),
        incs: vec![0; ncounters],
        ..Report::default()
    };
    match role {
        Role::Producer { steps } => {
            produce(w, id, steps, &mut Vec::new(), &mut rep);
            w.producer_done(&role.outs(), &mut rep);
        }
        Role::Consumer { ins, style } => consume(w, id, ins, style, &mut rep),
        Role::Mixed { steps, ins, style } => {
            let mut open = ins.clone();
            produce(w, id, steps, &mut open, &mut rep);
            w.producer_done(&role.outs(), &mut rep);
            // Channels that closed during the sends are already off `open`.
            consume(w, id, &open, style, &mut rep);
        }
        Role::Closer { chan, pre } => {
            w.mark(id, P_WAITPROD, *chan);
            w.prod_wg[*chan].wait();
            w.extra(*pre, &mut rep);
            w.close(*chan, &mut rep);
        }
        Role::Worker { ops, child } => {
            work(w, id, ops, &mut rep);
            if let Some((cops, joined)) = child {
                w.mark(id, P_CHILD, 0);
                let (w2, cops) = (w.clone(), cops.clone());
                let body = move || {
                    let mut crep = Report {
                        incs: vec![0; w2.counters.len()],
                        ..Report::default()
                    };
                    for &e in &cops {
                        w2.extra(e, &mut crep);
                    }
                    crep.incs
                };
                let incs = if *joined {
                    match rt_sched::spawn(body).join() {
                        Ok(v) => v,
                        Err(p) => {
                            let msg = rt_sched::panic_message(&*p);
                            rep.errors.push(format!("worker's child panicked: {msg}"));
                            vec![0; ncounters]
                        }
                    }
                } else {
                    let wg = WaitGroup::new();
                    let out = Arc::new(Mutex::new(None));
                    wg.add(1);
                    let (wg2, out2) = (wg.clone(), out.clone());
                    rt_sched::go(move || {
                        *out2.lock() = Some(body());
                        wg2.done();
                    });
                    wg.wait();
                    let got = out.lock().take();
                    got.unwrap_or_else(|| {
                        rep.errors
                            .push("WaitGroup.wait returned before the child was done".into());
                        vec![0; ncounters]
                    })
                };
                for (a, b) in rep.incs.iter_mut().zip(incs) {
                    *a += b;
                }
            }
        }
        Role::Flipper { changes } => {
            for (k, &(n, us)) in changes.iter().enumerate() {
                w.mark(id, P_FLIP, k);
                rt_sched::set_gomaxprocs(n);
                let now = rt_sched::gomaxprocs();
                if w.flippers == 1 && now != n {
                    rep.errors
                        .push(format!("set_gomaxprocs({n}) left GOMAXPROCS at {now}"));
                }
                rt_sched::sleep(Duration::from_micros(us as u64));
            }
            rt_sched::set_gomaxprocs(w.orig_procs);
        }
        Role::Panicker { chan, kinds } => panic_tests(w, id, *chan, kinds, &mut rep),
    }
    w.mark(id, P_DONE, 0);
    rep
}

/// Starts the watchdog: a plain thread (invisible to the runtime's deadlock
/// check) that, if the program has not finished after `secs`, prints what
/// every goroutine was doing and the runtime's goroutine dump, and exits 1.
fn watchdog(w: Arc<World>, plan_names: Vec<&'static str>, secs: u64) {
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if w.finished.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut s = format!(
            "torture FAILED seed={}: not finished after {secs} s (hang)\n",
            w.seed
        );
        for (g, p) in w.progress.iter().enumerate() {
            let p = p.load(Ordering::Relaxed);
            let name = plan_names.get(g).copied().unwrap_or("main");
            s += &format!(
                "  g{g} {name}: {} {}\n",
                phase_name(p >> 56),
                p & ((1 << 56) - 1)
            );
        }
        for (c, n) in w.closes.iter().enumerate() {
            s += &format!(
                "  channel {c}: closed {} times\n",
                n.load(Ordering::Relaxed)
            );
        }
        rt_sched::boot::schedtrace(&mut s, 0, true);
        rt_sched::boot::write_all(&mut s, -1, 2);
        eprint!("{s}");
        rt_sys::exit_now(1);
    });
}

/// Runs the plan and checks everything; returns the failures found.
fn run(plan: &Plan) -> Result<usize, Vec<String>> {
    let baseline = rt_sched::num_goroutine();
    let orig_procs = rt_sched::gomaxprocs();
    let ng = plan.gs.len();
    let main_id = ng;
    let nchan = plan.chans.len();
    let w = Arc::new(World {
        seed: plan.seed,
        chans: plan.chans.iter().map(|c| Chan::new(c.cap)).collect(),
        closers: plan.chans.iter().map(|c| c.closer).collect(),
        closed_sig: (0..nchan).map(|_| Chan::new(0)).collect(),
        prod_wg: (0..nchan).map(|_| WaitGroup::new()).collect(),
        remaining: plan
            .chans
            .iter()
            .map(|c| AtomicUsize::new(c.producers.len()))
            .collect(),
        closes: (0..nchan).map(|_| AtomicU32::new(0)).collect(),
        counters: (0..plan.counters).map(|_| Mutex::new(0)).collect(),
        slots: Mutex::new((0..ng).map(|_| None).collect()),
        wg: WaitGroup::new(),
        progress: (0..=ng).map(|_| AtomicU64::new(0)).collect(),
        finished: AtomicBool::new(false),
        orig_procs,
        flippers: plan
            .gs
            .iter()
            .filter(|g| matches!(g.role, Role::Flipper { .. }))
            .count(),
    });
    let names = plan.gs.iter().map(|g| g.role.name()).collect();
    watchdog(w.clone(), names, 10 + 10 * plan.size as u64);

    let mut errors = Vec::new();
    let mut mine = Report {
        id: main_id,
        incs: vec![0; plan.counters],
        ..Report::default()
    };
    for (c, cp) in plan.chans.iter().enumerate() {
        if w.chans[c].cap() != cp.cap {
            errors.push(format!(
                "channel {c}: cap {} for Chan::new({})",
                w.chans[c].cap(),
                cp.cap
            ));
        }
        if cp.closer != Closer::LastProducer {
            w.prod_wg[c].add(cp.producers.len() as i64);
        }
    }
    let counted = plan.gs.iter().filter(|g| g.launch != Launch::Join).count();
    w.wg.add(counted as i64);

    // Start everything.
    let mut handles: Vec<Option<JoinHandle<Report>>> = (0..ng).map(|_| None).collect();
    for &(g, extra) in &plan.spawn_order {
        w.mark(main_id, P_SPAWN, g);
        let role = plan.gs[g].role.clone();
        let w2 = w.clone();
        // The body of a goroutine that files its report and counts down.
        let filed = move || {
            let r = run_g(&w2, g, &role);
            w2.slots.lock()[g] = Some(r);
            w2.wg.done();
        };
        match plan.gs[g].launch {
            Launch::Join => {
                let (w2, role) = (w.clone(), plan.gs[g].role.clone());
                handles[g] = Some(rt_sched::spawn(move || run_g(&w2, g, &role)));
            }
            Launch::Go => rt_sched::go(filed),
            Launch::Dropped => drop(rt_sched::spawn(filed)),
        }
        w.extra(extra, &mut mine);
    }
    // Close the channels that are main's to close.
    for &c in &plan.main_closes {
        w.mark(main_id, P_WAITPROD, c);
        w.prod_wg[c].wait();
        w.close(c, &mut mine);
    }
    // Collect every report.
    let mut reports: Vec<Option<Report>> = (0..ng).map(|_| None).collect();
    for &g in &plan.join_order {
        w.mark(main_id, P_JOIN, g);
        let h = handles[g].take().expect("a handle per joined goroutine");
        match h.join() {
            Ok(r) => {
                if r.id != g || r.token != token(plan.seed, g) {
                    errors.push(format!(
                        "join of g{g} returned the report of g{} (token {:#x})",
                        r.id, r.token
                    ));
                }
                reports[g] = Some(r);
            }
            Err(p) => errors.push(format!(
                "g{g} ({}) panicked: {}",
                plan.gs[g].role.name(),
                rt_sched::panic_message(&*p)
            )),
        }
    }
    w.mark(main_id, P_WG, 0);
    w.wg.wait();
    w.mark(main_id, P_CHECK, 0);
    {
        let mut slots = w.slots.lock();
        for (g, gp) in plan.gs.iter().enumerate() {
            if gp.launch == Launch::Join {
                continue;
            }
            match slots[g].take() {
                Some(r) if r.id == g && r.token == token(plan.seed, g) => reports[g] = Some(r),
                Some(r) => errors.push(format!("slot of g{g} holds the report of g{}", r.id)),
                None => errors.push(format!(
                    "WaitGroup.wait returned before g{g} ({}) filed its report",
                    gp.role.name()
                )),
            }
        }
    }
    let delivered = check(plan, &w, &reports, &mine, &mut errors);

    // Every goroutine started here must end (after(..) timers within a
    // millisecond or so); the count must come back to where it was.
    let t0 = std::time::Instant::now();
    while rt_sched::num_goroutine() > baseline {
        if t0.elapsed() > Duration::from_secs(5) {
            errors.push(format!(
                "{} goroutines still alive 5 s after the end (started with {baseline})",
                rt_sched::num_goroutine()
            ));
            break;
        }
        rt_sched::sleep(Duration::from_micros(100));
    }
    w.finished.store(true, Ordering::Release);
    if errors.is_empty() {
        Ok(delivered)
    } else {
        Err(errors)
    }
}

/// The end-of-run checks; returns the number of messages delivered.
fn check(
    plan: &Plan,
    w: &World,
    reports: &[Option<Report>],
    mine: &Report,
    errors: &mut Vec<String>,
) -> usize {
    let all = || reports.iter().flatten().chain(std::iter::once(mine));
    for r in all() {
        for e in &r.errors {
            errors.push(format!("g{}: {e}", r.id));
        }
    }
    // What was sent: per (channel, producer), sequence numbers 0..count.
    let mut sent: HashMap<(u32, u32), Vec<bool>> = HashMap::new();
    for (g, gp) in plan.gs.iter().enumerate() {
        let Some(r) = &reports[g] else { continue };
        let steps = gp.role.steps().len();
        let total: u32 = r.sent.values().sum();
        if total as usize != steps {
            errors.push(format!("g{g} sent {total} messages for {steps} steps"));
        }
        let outs = gp.role.outs();
        for (&c, &n) in &r.sent {
            if !outs.contains(&c) {
                errors.push(format!("g{g} sent on channel {c}, not one of its {outs:?}"));
            }
            sent.insert((c as u32, g as u32), vec![false; n as usize]);
        }
    }
    // What was received: each sent message exactly once, and per receiver,
    // each producer's messages on a channel in the order they were sent.
    let mut delivered = 0;
    for r in all() {
        let mut last: HashMap<(u32, u32), u32> = HashMap::new();
        for &(c, p, seq) in &r.got {
            delivered += 1;
            match sent.get_mut(&(c, p)).and_then(|v| v.get_mut(seq as usize)) {
                Some(seen) if *seen => errors.push(format!(
                    "message c{c} p{p} #{seq} received twice (again by g{})",
                    r.id
                )),
                Some(seen) => *seen = true,
                None => errors.push(format!(
                    "g{} received c{c} p{p} #{seq}, which was never sent",
                    r.id
                )),
            }
            if let Some(prev) = last.insert((c, p), seq) {
                if prev >= seq {
                    errors.push(format!(
                        "g{} received c{c} p{p} #{seq} after #{prev}: out of order",
                        r.id
                    ));
                }
            }
        }
    }
    let mut lost: Vec<_> = sent
        .iter()
        .flat_map(|(&(c, p), v)| {
            v.iter()
                .enumerate()
                .filter(|(_, s)| !**s)
                .map(move |(i, _)| (c, p, i))
        })
        .collect();
    lost.sort_unstable();
    if !lost.is_empty() {
        errors.push(format!(
            "{} messages lost, first (chan, producer, seq): {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        ));
    }
    if delivered != plan.messages && errors.is_empty() {
        errors.push(format!(
            "{delivered} messages delivered, the plan sends {}",
            plan.messages
        ));
    }
    // Channels: closed once each, empty, and still closed.
    for (c, ch) in w.chans.iter().enumerate() {
        let n = w.closes[c].load(Ordering::Acquire);
        if n != 1 {
            errors.push(format!("channel {c} closed {n} times"));
        }
        if !ch.is_empty() {
            errors.push(format!("channel {c} holds {} values at the end", ch.len()));
        }
        if ch.try_recv() != Err(TryRecvError::Closed) {
            errors.push(format!("channel {c}: try_recv at the end is not closed"));
        }
    }
    // Counters.
    for (k, m) in w.counters.iter().enumerate() {
        let want: u64 = all().map(|r| r.incs[k]).sum();
        let got = *m.lock();
        if got != want {
            errors.push(format!("counter {k} is {got}, {want} increments were made"));
        }
    }
    let procs = rt_sched::gomaxprocs();
    if procs != w.orig_procs {
        errors.push(format!(
            "GOMAXPROCS is {procs} at the end, was {}",
            w.orig_procs
        ));
    }
    delivered
}

/// The plan, one line per channel, goroutine and send step.
fn describe(plan: &Plan) -> String {
    let mut s = format!(
        "plan seed={} size={}: {} channels, {} goroutines, {} counters, {} messages\n",
        plan.seed,
        plan.size,
        plan.chans.len(),
        plan.gs.len(),
        plan.counters,
        plan.messages
    );
    for (c, cp) in plan.chans.iter().enumerate() {
        s += &format!(
            "channel {c}: cap {}, closed by {:?}, producers {:?}\n",
            cp.cap, cp.closer, cp.producers
        );
    }
    for (g, gp) in plan.gs.iter().enumerate() {
        s += &format!("g{g} {} ({:?}):", gp.role.name(), gp.launch);
        match &gp.role {
            Role::Producer { steps } => s += &format!(" {} steps\n", steps.len()),
            Role::Mixed { steps, ins, style } => {
                s += &format!(" {} steps, ins {ins:?}, {style:?}\n", steps.len())
            }
            Role::Consumer { ins, style } => s += &format!(" ins {ins:?}, {style:?}\n"),
            Role::Closer { chan, pre } => s += &format!(" channel {chan}, first {pre:?}\n"),
            Role::Worker { ops, child } => s += &format!(" {ops:?}, child {child:?}\n"),
            Role::Flipper { changes } => s += &format!(" (procs, µs) {changes:?}\n"),
            Role::Panicker { chan, kinds } => s += &format!(" channel {chan}: {kinds:?}\n"),
        }
        for (k, st) in gp.role.steps().iter().enumerate() {
            s += &format!("  g{g} step {k}: {:?} then {:?}\n", st.op, st.extra);
        }
    }
    s += &format!("main: starts {:?}\n", plan.spawn_order);
    s += &format!(
        "main: closes {:?}, joins {:?}\n",
        plan.main_closes, plan.join_order
    );
    s
}

/// Entry from `rt-demo torture SEED [SIZE] [plan]`.
pub fn main(args: &[&OsStr]) -> i32 {
    let arg = |i: usize| args.get(i).and_then(|a| a.to_str());
    let Some(seed) = arg(0).and_then(|s| s.parse::<u64>().ok()) else {
        eprintln!("usage: rt-demo torture SEED [SIZE] [plan]");
        return 2;
    };
    let size = match arg(1) {
        None => 1,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                eprintln!("torture: SIZE must be 1..=1000, not {s:?}");
                return 2;
            }
        },
    };
    let plan = make_plan(seed, size);
    if arg(2) == Some("plan") {
        eprint!("{}", describe(&plan));
    }
    match run(&plan) {
        Ok(ops) => {
            println!("torture ok seed={seed} ops={ops}");
            0
        }
        Err(errors) => {
            let n = errors.len();
            let shown: Vec<&str> = errors.iter().take(8).map(String::as_str).collect();
            let more = if n > 8 {
                format!(" (and {} more)", n - 8)
            } else {
                String::new()
            };
            eprintln!("torture FAILED seed={seed}: {}{more}", shown.join("; "));
            1
        }
    }
}
