//! Tuning: the choice follows the timer, lives in a file keyed by adapter and strategy
//! list, survives corrupt, truncated and foreign files and concurrent writers, and turns
//! off with the environment switch. Stub timers make every choice deterministic; two tests
//! time for real on this adapter and check the result still holds the bound.

mod common;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use common::*;
use wgpu_activations::{
    Activation, Context, ContextOptions, Direction, Error, Storage, Strategy, TuningOptions,
    TUNING_ENV, TUNING_FILE_ENV,
};

/// Tests that create contexts hold this: one of them sets the environment switch, which
/// every context reads at creation.
fn env_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn tuning_ctx(file: Option<&Path>, on_first_use: bool) -> Context {
    Context::with_options(ContextOptions {
        tuning: TuningOptions {
            file: file.map(Path::to_path_buf),
            on_first_use,
        },
        ..Default::default()
    })
    .expect("a context")
}

fn softmax() -> Activation {
    "softmax".parse().unwrap()
}

const SHAPE: [usize; 2] = [128, 256];

/// What `Auto` runs for the forward of `SHAPE` on `ctx`.
fn auto_of(ctx: &Context) -> Strategy {
    ctx.call(&softmax(), &SHAPE)
        .row_plan(Direction::Forward, Storage::F32)
        .unwrap()
        .strategy
}

/// A stub timer: `fast` takes 1 us, every other strategy 1 ms; counts its calls.
fn stub(
    fast: Strategy,
    calls: &mut Vec<Strategy>,
) -> impl FnMut(Strategy) -> Result<f64, Error> + '_ {
    move |s| {
        calls.push(s);
        Ok(if s == fast { 1e-6 } else { 1e-3 })
    }
}

/// Tunes `SHAPE`'s forward with a stub timer that makes `fast` the fastest: the choice,
/// and the strategies timed, a sample each.
fn tune_stub(ctx: &Context, fast: Strategy) -> (Strategy, Vec<Strategy>) {
    let mut calls = Vec::new();
    let mut timer = stub(fast, &mut calls);
    let chosen = ctx.tune_with(
        &softmax(),
        &SHAPE,
        Direction::Forward,
        Storage::F32,
        &mut timer,
    );
    drop(timer);
    (chosen.unwrap(), calls)
}

/// A strategy the static table does not choose, so that Auto's change shows.
fn other_than(fixed: Strategy) -> Strategy {
    if fixed == Strategy::Lane {
        Strategy::Workgroup
    } else {
        Strategy::Lane
    }
}

/// A tuning file (in a folder still to be made) holding one choice for `SHAPE`: its
/// folder, the file, the static table's choice and the tuned one.
fn file_with_a_choice() -> (tempfile::TempDir, std::path::PathBuf, Strategy, Strategy) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested").join("tuning.txt");
    let ctx = tuning_ctx(Some(&file), false);
    let fixed = auto_of(&ctx);
    tune_stub(&ctx, other_than(fixed));
    (dir, file, fixed, other_than(fixed))
}

#[test]
fn tuning_follows_the_timer_and_auto_takes_its_choice() {
    let _env = env_lock();
    let ctx = tuning_ctx(None, false);
    let fixed = auto_of(&ctx);
    let other = other_than(fixed);
    let (chosen, calls) = tune_stub(&ctx, other);
    assert_eq!(chosen, other);
    assert_eq!(auto_of(&ctx), other, "Auto takes the tuned choice");
    // the losers were sampled once each, the winner three times
    assert_eq!(
        calls.iter().filter(|&&s| s == other).count(),
        3,
        "{calls:?}"
    );
    assert!(calls.iter().filter(|&&s| s != other).all(|s| calls
        .iter()
        .filter(|&c| c == s)
        .count()
        == 1));
    // the same kind of call (a row length in the same bucket, rows in the same bucket)
    // takes it too; another row length does not
    let same = ctx
        .call(&softmax(), &[100, 200])
        .row_plan(Direction::Forward, Storage::F32);
    assert_eq!(same.unwrap().strategy, other);
    let tuned = ctx.tuned();
    assert!(tuned.enabled && tuned.warnings.is_empty());
    assert_eq!(tuned.choices.len(), 1);
    assert!(tuned.to_string().contains(&format!("{other:?}")), "{tuned}");
    // a changed timer changes the choice
    assert_eq!(tune_stub(&ctx, fixed).0, fixed);
    assert_eq!(auto_of(&ctx), fixed);
    assert_eq!(ctx.tuned().choices.len(), 1);
    // an explicit strategy is never overridden
    let pinned = ctx.call(&softmax(), &SHAPE).strategy(other);
    assert_eq!(
        pinned
            .row_plan(Direction::Forward, Storage::F32)
            .unwrap()
            .strategy,
        other
    );
}

#[test]
fn only_strategies_that_serve_the_call_are_timed() {
    let _env = env_lock();
    let ctx = tuning_ctx(None, false);
    // rows past every register and resident capacity
    let long = [
        2,
        ctx.facts()
            .registers_capacity
            .max(ctx.facts().resident_capacity)
            * 4,
    ];
    let mut calls = Vec::new();
    let chosen = ctx
        .tune_with(
            &softmax(),
            &long,
            Direction::Forward,
            Storage::F32,
            &mut stub(Strategy::Registers, &mut calls),
        )
        .unwrap();
    assert!(
        !calls.contains(&Strategy::Registers) && !calls.contains(&Strategy::Resident),
        "{calls:?}"
    );
    assert_ne!(chosen, Strategy::Registers);
    // the backward has no register or resident kernels
    let mut calls = Vec::new();
    ctx.tune_with(
        &softmax(),
        &SHAPE,
        Direction::Backward,
        Storage::F32,
        &mut stub(Strategy::Lane, &mut calls),
    )
    .unwrap();
    assert!(calls.iter().all(|s| !matches!(
        s,
        Strategy::Registers | Strategy::SplitRegisters | Strategy::Resident
    )));
    // a timer error drops that strategy; all failing is an error, nothing recorded
    let mut failing = |s: Strategy| {
        if s == Strategy::Lane {
            Err(Error::Unsupported("no".into()))
        } else {
            Ok(1e-3)
        }
    };
    let chosen = ctx.tune_with(
        &softmax(),
        &[4, 8],
        Direction::Forward,
        Storage::F32,
        &mut failing,
    );
    assert_ne!(chosen.unwrap(), Strategy::Lane);
    let before = ctx.tuned().choices.len();
    let mut none = |_| Err(Error::Unsupported("no".into()));
    assert!(ctx
        .tune_with(
            &softmax(),
            &[3, 3000],
            Direction::Forward,
            Storage::F16,
            &mut none
        )
        .is_err());
    assert_eq!(ctx.tuned().choices.len(), before);
    // not a softmax-family op, or an empty tensor: an error, not a panic
    let relu: Activation = "relu".parse().unwrap();
    assert!(ctx
        .tune(&relu, &[16], Direction::Forward, Storage::F32)
        .is_err());
    assert!(ctx
        .tune(&softmax(), &[0, 16], Direction::Forward, Storage::F32)
        .is_err());
    assert!(ctx
        .tune(&softmax(), &[4, 16], Direction::Forward, Storage::F32)
        .is_ok());
}

#[test]
fn choices_persist_per_adapter_and_stale_ones_drop_out() {
    let _env = env_lock();
    let (_dir, file, fixed, other) = file_with_a_choice();
    let text = std::fs::read_to_string(&file).expect("the file was written (its folder made)");
    assert!(text.starts_with("wgpu-activations tuning v1\n"), "{text}");
    let second = tuning_ctx(Some(&file), false);
    assert_eq!(auto_of(&second), other, "a later context reads the choice");
    assert!(second.tuned().warnings.is_empty());
    drop(second);

    // a line from a version with another strategy list (its hash, the second field,
    // differs) drops out; another adapter's line is kept but not used
    let line = text.lines().nth(1).unwrap();
    let fields: Vec<&str> = line.split('\t').collect();
    let mut stale = fields.clone();
    stale[1] = "0123456789abcdef";
    let mut foreign = fields.clone();
    foreign[0] = "Some Other GPU|driver|1.0|Metal";
    let edited = format!(
        "wgpu-activations tuning v1\n{}\n{}\n",
        stale.join("\t"),
        foreign.join("\t")
    );
    std::fs::write(&file, &edited).unwrap();
    let third = tuning_ctx(Some(&file), false);
    assert!(third.tuned().choices.is_empty() && third.tuned().warnings.is_empty());
    assert_eq!(
        auto_of(&third),
        fixed,
        "without a current line, the static table"
    );
    // tuning here rewrites this adapter's lines and keeps the other adapter's
    tune_stub(&third, other);
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(after.contains("Some Other GPU"), "{after}");
    assert!(!after.contains("0123456789abcdef"), "{after}");
    assert_eq!(after.lines().count(), 3, "{after}");
}

#[test]
fn corrupt_truncated_and_foreign_files_are_ignored_with_a_warning() {
    let _env = env_lock();
    let (dir, file, fixed, other) = file_with_a_choice();
    let text = std::fs::read(&file).unwrap();
    let truncated = text[..text.len() - 9].to_vec();
    let cases: [(&str, Vec<u8>); 4] = [
        ("binary", vec![0xff, 0x00, 0x13, 0x37, 0xfe]),
        ("truncated", truncated),
        (
            "foreign",
            b"[cache]\nthis is some other program's file\n".to_vec(),
        ),
        (
            "garbled line",
            format!("wgpu-activations tuning v1\nx\ty\t{}\n", "z".repeat(40)).into_bytes(),
        ),
    ];
    for (what, bytes) in cases {
        std::fs::write(&file, &bytes).unwrap();
        let ctx = tuning_ctx(Some(&file), false);
        let tuned = ctx.tuned();
        assert!(tuned.choices.is_empty(), "{what}: {tuned:?}");
        assert_eq!(tuned.warnings.len(), 1, "{what}: {tuned:?}");
        assert!(
            tuned.warnings[0].contains("ignoring the tuning file"),
            "{what}: {tuned:?}"
        );
        assert_eq!(auto_of(&ctx), fixed, "{what}");
        // tuning again replaces the bad file with a good one
        tune_stub(&ctx, other);
        let again = tuning_ctx(Some(&file), false);
        assert_eq!(auto_of(&again), other, "{what}");
        assert!(again.tuned().warnings.is_empty(), "{what}");
    }
    // a folder where the file should be: a warning, and tuning reports the write's error
    let folder = dir.path().join("a folder");
    std::fs::create_dir(&folder).unwrap();
    let ctx = tuning_ctx(Some(&folder), false);
    assert_eq!(ctx.tuned().warnings.len(), 1, "{:?}", ctx.tuned());
    let mut calls = Vec::new();
    let err = ctx.tune_with(
        &softmax(),
        &SHAPE,
        Direction::Forward,
        Storage::F32,
        &mut stub(other, &mut calls),
    );
    assert!(matches!(err, Err(Error::Io { .. })), "{err:?}");
}

#[test]
fn two_writers_never_tear_the_file() {
    let _env = env_lock();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tuning.txt");
    let writers = [
        tuning_ctx(Some(&file), false),
        tuning_ctx(Some(&file), false),
    ];
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(&file) {
                    assert!(text.starts_with("wgpu-activations tuning v1\n"), "{text:?}");
                    assert!(text.ends_with('\n'), "{text:?}");
                    for line in text.lines().skip(1) {
                        assert_eq!(line.split('\t').count(), 9, "torn: {text:?}");
                    }
                    reads += 1;
                }
            }
            reads
        });
        let handles: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(w, ctx)| {
                s.spawn(move || {
                    for i in 0..40usize {
                        // many kinds of call, so the file grows and shrinks between writes
                        let axis = 1 << (i % 12 + 1);
                        let fast = Strategy::ALL[(i + w) % 3];
                        let mut timer = |s: Strategy| Ok(if s == fast { 1e-6 } else { 1e-3 });
                        ctx.tune_with(
                            &softmax(),
                            &[8, axis],
                            Direction::Forward,
                            Storage::F32,
                            &mut timer,
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
    // no temporary file is left behind, and the last file reads without a warning
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let ctx = tuning_ctx(Some(&file), false);
    assert!(ctx.tuned().warnings.is_empty() && !ctx.tuned().choices.is_empty());
}

#[test]
fn the_environment_switch_turns_tuning_off() {
    let _env = env_lock();
    let (_dir, file, fixed, other) = file_with_a_choice();
    let written = std::fs::read(&file).unwrap();
    std::env::set_var(TUNING_ENV, "off");
    let off = tuning_ctx(Some(&file), true);
    std::env::remove_var(TUNING_ENV);
    let tuned = off.tuned();
    assert!(!tuned.enabled && tuned.choices.is_empty(), "{tuned:?}");
    assert_eq!(auto_of(&off), fixed, "the file is not read");
    let (chosen, calls) = tune_stub(&off, other);
    assert_eq!((chosen, calls.len()), (fixed, 0), "nothing is timed");
    // on first use neither: a call runs the static choice
    let x = normal_inputs(SHAPE.iter().product());
    off.call(&softmax(), &SHAPE).run(&x).unwrap();
    assert!(off.tuned().choices.is_empty());
    assert_eq!(std::fs::read(&file).unwrap(), written, "nothing is written");
    // the file variable names a file where the options name none
    std::env::set_var(TUNING_FILE_ENV, &file);
    let named = tuning_ctx(None, false);
    std::env::remove_var(TUNING_FILE_ENV);
    assert_eq!(auto_of(&named), other);
}

#[test]
fn tuning_on_first_use_times_for_real_and_keeps_the_bound() {
    let _env = env_lock();
    let ctx = tuning_ctx(None, true);
    let a: Activation = "log_softmax".parse().unwrap();
    let shape = [96, 96];
    let x = normal_inputs(shape.iter().product());
    let y = ctx.call(&a, &shape).run(&x).unwrap();
    let tuned = ctx.tuned();
    assert_eq!(tuned.choices.len(), 1, "{tuned:?}");
    assert!(tuned.warnings.is_empty(), "{tuned:?}");
    let (key, strategy, seconds) = tuned.choices[0];
    assert_eq!(
        (key.direction, key.storage, key.strided),
        (Direction::Forward, Storage::F32, false)
    );
    assert!(seconds > 0.0 && seconds < 1.0, "{seconds}");
    assert_eq!(auto_of(&ctx), auto_of(&ctx), "tuned once");
    assert_eq!(
        ctx.call(&a, &shape)
            .row_plan(Direction::Forward, Storage::F32)
            .unwrap()
            .strategy,
        strategy
    );
    assert_rows_close(&a, &x, &shape, &y, "tuned on first use");
    // the backward, strided, tuned explicitly with the real timer
    let strided: Activation = "softmax(dim=0)".parse().unwrap();
    let chosen = ctx
        .tune(&strided, &[64, 48], Direction::Backward, Storage::F16)
        .unwrap();
    let last = ctx.tuned();
    assert!(last
        .choices
        .iter()
        .any(|&(k, s, _)| k.strided && k.direction == Direction::Backward && s == chosen));
}
