//! Tuning on the user's adapter: which softmax-family strategy is fastest for a kind of
//! call, measured here rather than taken from a table measured on another GPU, and kept in
//! a file.
//!
//! A tuned choice is keyed by [`TuneKey`]: the direction, the storage type, the row length
//! (its power-of-two bucket), how many rows (few, some, many) and whether the axis is
//! contiguous or strided. `Strategy::Auto` takes a tuned choice for its key where there is
//! one (and the strategy serves the call), else the static table. The file holds one line
//! per choice, keyed by the adapter (name, driver, backend) and a hash of the strategies
//! that were timed, so a file from another adapter, or from a version with other
//! strategies, gives nothing; a corrupt, truncated or foreign file is ignored with a
//! warning ([`Tuned::warnings`]). `WGPU_ACTIVATIONS_TUNING=off` turns tuning off for the
//! contexts created while it is set: no file is read, nothing is timed, `Auto` is the
//! static table (deterministic CI).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::{Direction, Error, Result, RowView, Storage, Strategy};

mod measure;

pub use measure::Stopwatch;

/// The environment variable that turns tuning off (`off`, `0` or `false`).
pub const TUNING_ENV: &str = "WGPU_ACTIVATIONS_TUNING";

/// The environment variable that names a tuning file for contexts whose options name
/// none.
pub const TUNING_FILE_ENV: &str = "WGPU_ACTIVATIONS_TUNING_FILE";

/// How a context tunes ([`crate::ContextOptions::tuning`]).
#[derive(Clone, Debug, Default)]
pub struct TuningOptions {
    /// A file of tuned choices: read at creation, written (whole or not at all) after
    /// each tuning. Shared by several adapters and processes: each keeps its own lines.
    pub file: Option<PathBuf>,
    /// Tune a kind of call the first time `Auto` meets it (the call waits for the timing,
    /// a few runs of each strategy on a tensor of its shape), rather than only when
    /// [`crate::Context::tune`] is called.
    pub on_first_use: bool,
}

impl TuningOptions {
    /// Options with the conventional per-user file: `wgpu-activations/tuning.txt` in
    /// `$XDG_CACHE_HOME`, else `$HOME/.cache`, else `%LOCALAPPDATA%` (`file` is `None`
    /// where none of them is set).
    pub fn user_cache() -> Self {
        let dir = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from));
        TuningOptions {
            file: dir.map(|d| d.join("wgpu-activations").join("tuning.txt")),
            on_first_use: false,
        }
    }
}

/// How many rows a call has, as tuning buckets them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rows {
    /// Fewer than 64.
    Few,
    /// 64 to 4,095.
    Some,
    /// 4,096 or more.
    Many,
}

/// A kind of softmax-family call, as tuning keys its choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TuneKey {
    /// The direction.
    pub direction: Direction,
    /// The tensors' storage type.
    pub storage: Storage,
    /// The row length's bucket: rows of `2^(bucket - 1) + 1` to `2^bucket` elements.
    pub axis_bucket: u8,
    /// How many rows.
    pub rows: Rows,
    /// Whether the axis is strided (not the last one).
    pub strided: bool,
}

impl TuneKey {
    /// The key of a call of `view` in `direction` on `storage`.
    pub(crate) fn of(view: RowView, storage: Storage, direction: Direction) -> Self {
        let rows = match view.rows() {
            r if r < 64 => Rows::Few,
            r if r < 4096 => Rows::Some,
            _ => Rows::Many,
        };
        TuneKey {
            direction,
            storage,
            axis_bucket: (view.axis.max(1) as u64).next_power_of_two().ilog2() as u8,
            rows,
            strided: view.inner > 1,
        }
    }
}

/// The strategies tuning times in a direction (the backward has no register kernels).
pub(crate) fn candidates(direction: Direction) -> &'static [Strategy] {
    match direction {
        Direction::Forward => &Strategy::ALL,
        Direction::Backward => &[
            Strategy::Lane,
            Strategy::Subgroup,
            Strategy::Workgroup,
            Strategy::Split,
        ],
    }
}

/// A hash of the strategies timed in `direction` (FNV-1a of their names): a file's lines
/// from a version with other strategies do not match.
fn strategies_hash(direction: Direction) -> u64 {
    let names = candidates(direction)
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(",");
    names.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The tuned choices of a context, and what went wrong reading its file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tuned {
    /// Each tuned kind of call, its strategy and its median time per run (seconds).
    pub choices: Vec<(TuneKey, Strategy, f64)>,
    /// Why the tuning file was ignored, if it was.
    pub warnings: Vec<String>,
    /// Whether tuning is on (not turned off by [`TUNING_ENV`]).
    pub enabled: bool,
}

impl std::fmt::Display for Tuned {
    /// One line per choice: `forward f32 rows of 513..1024, many rows, contiguous: Registers (12.3 us)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (k, s, t) in &self.choices {
            let hi = 1u64 << k.axis_bucket;
            let lo = (hi / 2 + 1).min(hi);
            writeln!(
                f,
                "{:?} {} rows of {lo}..{hi}, {:?} rows, {}: {s:?} ({:.1} us)",
                k.direction,
                k.storage,
                k.rows,
                if k.strided { "strided" } else { "contiguous" },
                t * 1e6
            )?;
        }
        Ok(())
    }
}

/// A context's tuning: whether it is on, its options, its table.
pub(crate) struct Tuning {
    enabled: bool,
    options: TuningOptions,
    /// The adapter's key in the file (`None` for a device the caller brought: no file).
    adapter: Option<String>,
    table: Mutex<HashMap<TuneKey, (Strategy, f64)>>,
    warnings: Mutex<Vec<String>>,
    /// The keys tuned on first use already (or being tuned), tried once each.
    tried: Mutex<HashSet<TuneKey>>,
}

impl Tuning {
    /// Tuning for a context on `adapter`: off where [`TUNING_ENV`] says so; else the
    /// file's lines for this adapter and these strategies, if it has any.
    pub(crate) fn new(mut options: TuningOptions, adapter: Option<&wgpu::AdapterInfo>) -> Self {
        let off = std::env::var(TUNING_ENV).is_ok_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "off" | "0" | "false"
            )
        });
        if options.file.is_none() {
            options.file = std::env::var_os(TUNING_FILE_ENV)
                .filter(|f| !f.is_empty())
                .map(PathBuf::from);
        }
        let adapter = adapter.map(|i| {
            format!("{}|{}|{}|{:?}", i.name, i.driver, i.driver_info, i.backend).replace('\t', " ")
        });
        let tuning = Tuning {
            enabled: !off,
            options,
            adapter,
            table: Mutex::new(HashMap::new()),
            warnings: Mutex::new(Vec::new()),
            tried: Mutex::new(HashSet::new()),
        };
        if tuning.enabled {
            tuning.load();
        }
        tuning
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `Auto` should tune `key` now: tuning on first use, no choice for it yet,
    /// not tried before (each key is tried once, even where timing fails).
    pub(crate) fn claim_first_use(&self, key: TuneKey) -> bool {
        self.enabled
            && self.options.on_first_use
            && self.lookup(key).is_none()
            && self
                .tried
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<TuneKey, (Strategy, f64)>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn warn(&self, why: String) {
        log::warn!("wgpu-activations: {why}");
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(why);
    }

    /// The tuned choice for `key`, if any.
    pub(crate) fn lookup(&self, key: TuneKey) -> Option<Strategy> {
        if !self.enabled {
            return None;
        }
        self.table().get(&key).map(|&(s, _)| s)
    }

    /// Records a choice and writes the file (where there is one).
    pub(crate) fn record(&self, key: TuneKey, strategy: Strategy, seconds: f64) -> Result<()> {
        self.table().insert(key, (strategy, seconds));
        self.save()
    }

    /// A snapshot of the table, sorted, with the warnings.
    pub(crate) fn snapshot(&self) -> Tuned {
        let mut choices: Vec<_> = self.table().iter().map(|(&k, &(s, t))| (k, s, t)).collect();
        choices.sort_by_key(|&(k, ..)| k);
        Tuned {
            choices,
            warnings: self
                .warnings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            enabled: self.enabled,
        }
    }

    /// Reads this adapter's current lines from the file: a missing file gives nothing, a
    /// corrupt or foreign one nothing and a warning.
    fn load(&self) {
        let (Some(path), Some(adapter)) = (&self.options.file, &self.adapter) else {
            return;
        };
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                return self.warn(format!(
                    "cannot read the tuning file {}: {e}",
                    path.display()
                ))
            }
        };
        match parse(&text) {
            Ok(lines) => {
                let mut table = self.table();
                for line in lines.into_iter().filter(|l| &l.adapter == adapter) {
                    if line.hash == strategies_hash(line.key.direction) {
                        table.insert(line.key, (line.strategy, line.seconds));
                    }
                }
            }
            Err(why) => self.warn(format!(
                "ignoring the tuning file {}: {why}",
                path.display()
            )),
        }
    }

    /// Writes the file whole: the other adapters' valid lines kept, this adapter's
    /// replaced by the table.
    fn save(&self) -> Result<()> {
        let (Some(path), Some(adapter)) = (&self.options.file, &self.adapter) else {
            return Ok(());
        };
        let others = std::fs::read(path)
            .ok()
            .and_then(|t| parse(&t).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|l| &l.adapter != adapter);
        let mine = self
            .table()
            .iter()
            .map(|(&key, &(strategy, seconds))| Line {
                adapter: adapter.clone(),
                hash: strategies_hash(key.direction),
                key,
                strategy,
                seconds,
            })
            .collect::<Vec<_>>();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                action: "create the tuning file's folder",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut text = format!("{HEADER}\n");
        for line in others.chain(mine) {
            text.push_str(&line.render());
            text.push('\n');
        }
        crate::files::write_whole(path, text.as_bytes())
    }
}

/// The first line of a tuning file.
const HEADER: &str = "wgpu-activations tuning v1";

/// One line of the file.
#[derive(Clone, Debug, PartialEq)]
struct Line {
    adapter: String,
    hash: u64,
    key: TuneKey,
    strategy: Strategy,
    seconds: f64,
}

impl Line {
    /// Tab-separated: adapter, hash, direction, storage, axis bucket, rows, strided,
    /// strategy, seconds.
    fn render(&self) -> String {
        let k = &self.key;
        format!(
            "{}\t{:016x}\t{:?}\t{}\t{}\t{:?}\t{}\t{:?}\t{:e}",
            self.adapter,
            self.hash,
            k.direction,
            k.storage,
            k.axis_bucket,
            k.rows,
            u8::from(k.strided),
            self.strategy,
            self.seconds
        )
    }
}

/// Every line of a tuning file, or why it is not one (not UTF-8, no header, a line that
/// does not parse: a truncated or corrupt file is refused whole).
fn parse(bytes: &[u8]) -> std::result::Result<Vec<Line>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("it does not start with `{HEADER}`"));
    }
    lines
        .enumerate()
        .map(|(i, l)| parse_line(l).ok_or_else(|| format!("line {} does not parse: `{l}`", i + 2)))
        .collect()
}

fn parse_line(line: &str) -> Option<Line> {
    let f: Vec<&str> = line.split('\t').collect();
    let [adapter, hash, direction, storage, bucket, rows, strided, strategy, seconds] = f[..]
    else {
        return None;
    };
    let named =
        |all: &[Strategy], name: &str| all.iter().copied().find(|s| format!("{s:?}") == name);
    let key = TuneKey {
        direction: match direction {
            "Forward" => Direction::Forward,
            "Backward" => Direction::Backward,
            _ => return None,
        },
        storage: storage.parse().ok()?,
        axis_bucket: bucket.parse().ok().filter(|&b: &u8| b <= 40)?,
        rows: match rows {
            "Few" => Rows::Few,
            "Some" => Rows::Some,
            "Many" => Rows::Many,
            _ => return None,
        },
        strided: match strided {
            "0" => false,
            "1" => true,
            _ => return None,
        },
    };
    Some(Line {
        adapter: adapter.to_string(),
        hash: u64::from_str_radix(hash, 16).ok()?,
        // only a strategy timed in its direction: the backward has no register kernels
        strategy: named(candidates(key.direction), strategy)?,
        seconds: seconds
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s >= 0.0)?,
        key,
    })
}

/// Picks the fastest of `candidates` by `timer` (seconds per run of a strategy): a first
/// sample of each, the candidates slower than twice the fastest dropped, then two more
/// samples of the rest; the lowest median wins. A candidate the timer cannot run (an
/// error) is dropped.
pub(crate) fn fastest(
    candidates: &[Strategy],
    timer: &mut dyn FnMut(Strategy) -> Result<f64>,
) -> Result<(Strategy, f64)> {
    let mut samples: Vec<(Strategy, Vec<f64>)> = candidates
        .iter()
        .filter_map(|&s| timer(s).ok().map(|t| (s, vec![t])))
        .collect();
    let best = samples
        .iter()
        .map(|(_, t)| t[0])
        .fold(f64::INFINITY, f64::min);
    samples.retain(|(_, t)| t[0] <= 2.0 * best);
    for (s, times) in &mut samples {
        for _ in 0..2 {
            times.push(timer(*s)?);
        }
        times.sort_by(f64::total_cmp);
    }
    samples
        .into_iter()
        .map(|(s, t)| (s, t[t.len() / 2]))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or_else(|| Error::Unsupported("no strategy could be timed for this call".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(direction: Direction, strategy: Strategy) -> Line {
        Line {
            adapter: "llvmpipe (LLVM 19.1.7, 256 bits)|llvmpipe|Mesa 25.0.7|Vulkan".into(),
            hash: strategies_hash(direction),
            key: TuneKey {
                direction,
                storage: Storage::Bf16,
                axis_bucket: 10,
                rows: Rows::Some,
                strided: true,
            },
            strategy,
            seconds: 1.25e-5,
        }
    }

    #[test]
    fn lines_round_trip_and_bad_ones_are_refused() {
        let l = line(Direction::Forward, Strategy::SplitRegisters);
        assert_eq!(parse_line(&l.render()), Some(l.clone()));
        let text = format!("{HEADER}\n{}\n", l.render());
        assert_eq!(parse(text.as_bytes()), Ok(vec![l.clone()]));
        // the backward has no register kernels: such a line is not one this crate wrote
        let b = line(Direction::Backward, Strategy::Registers);
        assert_eq!(parse_line(&b.render()), None);
        assert!(parse(format!("{HEADER}\n{}\n", b.render()).as_bytes()).is_err());
        for bad in [
            "",
            "a\tb",
            &l.render().replace("\t10\t", "\t99\t"),
            &l.render().replace("e-5", "x"),
        ] {
            assert_eq!(parse_line(bad), None, "{bad}");
        }
        assert!(parse(b"").is_err() && parse(b"wgpu-activations tuning v2\n").is_err());
        assert_eq!(parse(format!("{HEADER}\n").as_bytes()), Ok(vec![]));
        // the two directions time different lists
        assert_ne!(
            strategies_hash(Direction::Forward),
            strategies_hash(Direction::Backward)
        );
    }

    #[test]
    fn losers_are_dropped_after_one_sample() {
        let mut calls = Vec::new();
        let times = |s: Strategy| match s {
            Strategy::Lane => 1.0,
            Strategy::Workgroup => 1.5, // within twice the fastest: sampled again
            _ => 2.5,
        };
        let mut timer = |s| {
            calls.push(s);
            Ok(times(s))
        };
        let all = [Strategy::Lane, Strategy::Workgroup, Strategy::Split];
        assert_eq!(fastest(&all, &mut timer).unwrap(), (Strategy::Lane, 1.0));
        assert_eq!(calls.iter().filter(|&&s| s == Strategy::Split).count(), 1);
        assert_eq!(
            calls.iter().filter(|&&s| s == Strategy::Workgroup).count(),
            3
        );
        // the median, not the mean: one slow sample does not lose
        let mut n = 0;
        let mut noisy = |s| {
            n += 1;
            Ok(match (s, n) {
                (Strategy::Lane, 3) => 100.0,
                (Strategy::Lane, _) => 1.0,
                _ => 1.2,
            })
        };
        let two = [Strategy::Lane, Strategy::Workgroup];
        assert_eq!(fastest(&two, &mut noisy).unwrap().0, Strategy::Lane);
        assert!(fastest(&[], &mut |_| Ok(1.0)).is_err());
    }
}
