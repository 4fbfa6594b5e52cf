//! Short parallel loops that follow each other closely: a decoded token's products, about 240
//! of them, each 0.1 to 0.9 M multiply-adds (2 to 60 µs on one thread) with a few
//! microseconds of serial work between them.
//!
//! On rayon's pool those ran slower on two threads than on one (measured natively: 84 against
//! 120 tokens/s): an idle pool thread falls asleep within microseconds, the next loop waits
//! for the kernel (natively) or the browser (`memory.atomic.wait`) to wake it, and a caller
//! outside the pool sleeps until the pool has finished. Here the caller takes pieces itself,
//! and helpers (jobs on rayon's pool, at most one fewer than its threads) take the rest and
//! stay awake, spinning, for a few milliseconds after their last piece, so that the next loop
//! finds them ready. A loop never waits for a helper that has not joined it, so a helper that
//! is late or asleep costs nothing but its share of the work.

#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
mod helpers {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

    /// Polls of an idle helper before it leaves the pool thread it holds. A poll is an atomic
    /// load and a spin-loop hint: about 5–40 ns natively (the hint is a `pause`), 1–2 ns in
    /// wasm (no hint there), so a few milliseconds either way; longer than the serial stretch
    /// between two products of a token and between two tokens, short enough that the pool is
    /// soon whole again for other work.
    const IDLE_POLLS: u32 = if cfg!(target_arch = "wasm32") {
        2_000_000
    } else {
        200_000
    };

    /// At most this many helpers: a decoded token is bound by memory bandwidth within a few
    /// threads (two threads here already read its weights at about 20 GB/s natively), and each
    /// helper spins on a core of its own while a caption is written.
    const MAX_HELPERS: usize = 3;

    /// The loop on offer: the caller's closure over piece indices, and the next piece to take.
    struct Job {
        task: *const (dyn Fn(usize) + Sync),
        pieces: usize,
        next: AtomicUsize,
    }

    /// `epoch << 32 | OPEN | helpers in the current job`. A helper joins by incrementing the
    /// count while the job is open and its epoch unchanged; the caller closes the job, then
    /// waits for the count to reach zero: so the job (on the caller's stack) outlives every
    /// helper that read it.
    static STATE: AtomicU64 = AtomicU64::new(0);
    const OPEN: u64 = 1 << 31;
    const COUNT: u64 = OPEN - 1;
    static JOB: AtomicPtr<Job> = AtomicPtr::new(std::ptr::null_mut());
    /// Helpers running (spinning or working).
    static HELPERS: AtomicUsize = AtomicUsize::new(0);
    /// Taken by the loop on offer: one started meanwhile (by another thread) runs alone.
    static BUSY: AtomicBool = AtomicBool::new(false);
    static PANICKED: AtomicBool = AtomicBool::new(false);

    /// Runs `task(i)` for every `i < pieces`, on the calling thread and on the helpers.
    pub fn run(pieces: usize, task: &(dyn Fn(usize) + Sync)) {
        let wanted = (rayon::current_num_threads() - 1).min(MAX_HELPERS);
        if pieces < 2 || wanted == 0 || BUSY.swap(true, Ordering::Acquire) {
            (0..pieces).for_each(task);
            return;
        }
        let job = Job {
            // SAFETY (of every later dereference): the job is withdrawn and every helper that
            // joined it has left before this function returns or unwinds (`Closing`).
            task: unsafe {
                std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(
                    task,
                )
            },
            pieces,
            next: AtomicUsize::new(0),
        };
        JOB.store(&job as *const Job as *mut Job, Ordering::Relaxed);
        let epoch = (STATE.load(Ordering::Relaxed) >> 32).wrapping_add(1);
        STATE.store(epoch << 32 | OPEN, Ordering::Release);
        // Helpers are started after the job is on offer, so that one that starts fast joins it.
        let mut running = HELPERS.load(Ordering::Relaxed);
        while running < wanted {
            match HELPERS.compare_exchange(
                running,
                running + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    rayon::spawn(help);
                    running += 1;
                }
                Err(now) => running = now,
            }
        }
        // Closes the job when this function is left, by return or by a panic of a piece.
        let _closing = Closing;
        take_pieces(&job);
    }

    /// Withdraws the job on offer and waits for the helpers inside it to finish their pieces.
    struct Closing;

    impl Drop for Closing {
        fn drop(&mut self) {
            let mut state = STATE.load(Ordering::Acquire);
            while let Err(now) = STATE.compare_exchange_weak(
                state,
                state & !OPEN,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                state = now;
            }
            while STATE.load(Ordering::Acquire) & COUNT != 0 {
                std::hint::spin_loop();
            }
            JOB.store(std::ptr::null_mut(), Ordering::Relaxed);
            BUSY.store(false, Ordering::Release);
            if PANICKED.swap(false, Ordering::Relaxed) && !std::thread::panicking() {
                panic!("a piece of a parallel loop panicked on a helper thread");
            }
        }
    }

    fn take_pieces(job: &Job) {
        loop {
            let i = job.next.fetch_add(1, Ordering::Relaxed);
            if i >= job.pieces {
                return;
            }
            // SAFETY: see `run`.
            unsafe { (*job.task)(i) };
        }
    }

    /// A helper's life on a pool thread: joins each job on offer, leaves after `IDLE_POLLS`
    /// polls without one.
    fn help() {
        let mut idle = 0;
        let mut last_epoch = None;
        while idle < IDLE_POLLS {
            let state = STATE.load(Ordering::Acquire);
            let epoch = state >> 32;
            if state & OPEN == 0 || last_epoch == Some(epoch) {
                idle += 1;
                std::hint::spin_loop();
                continue;
            }
            last_epoch = Some(epoch);
            if STATE
                .compare_exchange(state, state + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                // The job closed, or another helper joined first (the next poll tries again).
                last_epoch = None;
                continue;
            }
            // SAFETY: joined while open: the caller waits for this helper before the job ends.
            let job = unsafe { &*JOB.load(Ordering::Relaxed) };
            if catch_unwind(AssertUnwindSafe(|| take_pieces(job))).is_err() {
                PANICKED.store(true, Ordering::Relaxed);
            }
            STATE.fetch_sub(1, Ordering::Release);
            idle = 0;
        }
        HELPERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// [`super::for_each_chunk`] for short loops run back to back (see the module's comment): the
/// same pieces, the same task, on the calling thread and on helpers that stay awake between
/// loops; in turn where the build has no threads or the pool one.
pub fn for_each_chunk<T, F>(out: &mut [T], chunk: usize, task: F)
where
    T: Send,
    F: Fn((usize, &mut [T])) + Sync + Send,
{
    assert!(chunk > 0);
    #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
    {
        let (len, base) = (out.len(), SendPtr(out.as_mut_ptr()));
        let piece = |i: usize| {
            let start = i * chunk;
            let end = (start + chunk).min(len);
            // SAFETY: pieces `i` are distinct and each is taken once, so these slices of `out`
            // (borrowed mutably for the whole loop) never overlap.
            let slice =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
            task((i, slice));
        };
        helpers::run(len.div_ceil(chunk), &piece);
        return;
    }
    #[allow(unreachable_code)]
    out.chunks_mut(chunk).enumerate().for_each(task);
}

#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
struct SendPtr<T>(*mut T);

#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
impl<T> SendPtr<T> {
    /// Through a method, so that closures capture the wrapper (which is `Sync`), not the field.
    fn get(&self) -> *mut T {
        self.0
    }
}

// SAFETY: only used to hand disjoint pieces of one slice of `Send` values to other threads.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
unsafe impl<T: Send> Sync for SendPtr<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_is_taken_exactly_once_over_many_loops() {
        for len in [0usize, 1, 5, 64, 1000, 4097] {
            for round in 0..200 {
                let mut out = vec![0u32; len];
                for_each_chunk(&mut out, 7, |(i, piece)| {
                    for (k, v) in piece.iter_mut().enumerate() {
                        *v += (i * 7 + k) as u32 + round;
                    }
                });
                assert!(out.iter().enumerate().all(|(k, &v)| v == k as u32 + round));
            }
        }
    }

    #[test]
    fn loops_from_several_threads_at_once_each_finish_whole() {
        std::thread::scope(|s| {
            for t in 0..4u32 {
                s.spawn(move || {
                    for _ in 0..300 {
                        let mut out = vec![0u32; 333];
                        for_each_chunk(&mut out, 10, |(_, piece)| {
                            piece.iter_mut().for_each(|v| *v += t + 1)
                        });
                        assert!(out.iter().all(|&v| v == t + 1));
                    }
                });
            }
        });
    }

    #[test]
    fn a_panicking_piece_reaches_the_caller_and_later_loops_still_run() {
        for _ in 0..20 {
            let result = std::panic::catch_unwind(|| {
                let mut out = vec![0u8; 64];
                for_each_chunk(&mut out, 4, |(i, _)| assert_ne!(i, 9, "piece 9"));
            });
            assert!(result.is_err());
            let mut out = vec![0u8; 64];
            for_each_chunk(&mut out, 4, |(_, piece)| piece.fill(1));
            assert!(out.iter().all(|&v| v == 1));
        }
    }
}
