//! The deployment artefacts, checked against the binary they deploy.
//!
//! Every YAML document under `deploy/kubernetes/` is parsed. Each CronJob's arguments go
//! through the binary's own parser and settings ([`Cli::try_parse_from`], then
//! [`Settings::resolve`]) with the environment its pod would have: the ConfigMap and Secret
//! its `envFrom` names, then its own `env`. Every variable set there must be one the binary
//! reads, as clap declares them (plus `RUST_LOG`). The schedules, `concurrencyPolicy`,
//! deadlines, resources and security context are checked too. The `Dockerfile` and
//! `.dockerignore` are parsed by small line parsers: stages, user, entrypoint, binaries, and
//! that every file the build needs reaches it.

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsString,
    fs,
    panic::{AssertUnwindSafe, catch_unwind, resume_unwind},
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use binance_extractor::{
    cli::{Cli, LogFormat},
    settings::{JobSettings, Settings},
    store::Backend,
};
use clap::{CommandFactory, Parser};
use serde::Deserialize;
use serde_json::Value;

/// The binaries the image must ship.
const BINARIES: [&str; 2] = ["binance-extractor", "binance-sim"];
/// Longest CronJob name Kubernetes accepts (its jobs append an 11-character suffix).
const MAX_CRONJOB_NAME: usize = 52;
const MINUTES_PER_DAY: u32 = 24 * 60;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy_dir() -> PathBuf {
    repository().join("deploy/kubernetes")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every file under `dir`, recursively, as paths relative to `base` with `/` separators.
fn files_under(base: &Path, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(base).expect("under base");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

// ---- the Kubernetes manifests ---------------------------------------------------------------

/// One YAML document of one manifest file.
struct Doc {
    /// Path relative to `deploy/kubernetes/`.
    file: String,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }

    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }

    /// `CronJob binance-extractor-sync-15m (cronjobs-sync.yaml)`, for messages.
    fn what(&self) -> String {
        format!("{} {} ({})", self.kind(), self.name(), self.file)
    }
}

/// Every non-empty YAML document under `deploy/kubernetes/`, multi-document files included.
fn documents() -> Vec<Doc> {
    let dir = deploy_dir();
    let files: Vec<String> = files_under(&dir, &dir)
        .into_iter()
        .filter(|f| f.ends_with(".yaml") || f.ends_with(".yml"))
        .collect();
    assert!(!files.is_empty(), "no YAML under {}", dir.display());
    let mut docs = Vec::new();
    for file in files {
        let text = read(&dir.join(&file));
        for (i, de) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(de)
                .unwrap_or_else(|e| panic!("{file}: document {} is not valid YAML: {e}", i + 1));
            if !value.is_null() {
                docs.push(Doc {
                    file: file.clone(),
                    value,
                });
            }
        }
    }
    docs
}

fn find<'a>(docs: &'a [Doc], kind: &str, name: &str, wanted_by: &str) -> &'a Doc {
    docs.iter()
        .find(|d| d.kind() == kind && d.name() == name)
        .unwrap_or_else(|| panic!("{wanted_by} refers to {kind} {name}, which no manifest defines"))
}

/// The key-value pairs of a ConfigMap (`data`) or Secret (`stringData`), each a string.
fn entries(doc: &Doc) -> BTreeMap<String, String> {
    let map = match doc.kind() {
        "ConfigMap" => &doc.value["data"],
        "Secret" => {
            assert!(
                doc.value.get("data").is_none(),
                "{}: write the values under stringData (this test does not decode base64)",
                doc.what()
            );
            &doc.value["stringData"]
        }
        other => panic!("{}: expected a ConfigMap or a Secret, got {other}", doc.what()),
    };
    let map = map
        .as_object()
        .unwrap_or_else(|| panic!("{}: no key-value map", doc.what()));
    map.iter()
        .map(|(k, v)| {
            let v = v.as_str().unwrap_or_else(|| {
                panic!(
                    "{}: {k} is {v}, not a string: Kubernetes rejects it (quote it)",
                    doc.what()
                )
            });
            (k.clone(), v.to_string())
        })
        .collect()
}

/// The environment a container gets: its `envFrom` sources in order (a later one wins), then
/// its `env` entries. Returns it with, for each variable, the sources that set it.
fn container_environment(
    container: &Value,
    docs: &[Doc],
    what: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, Vec<String>>) {
    let mut env = BTreeMap::new();
    let mut setters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = source["prefix"].as_str().unwrap_or("");
        let (kind, reference) = if source.get("configMapRef").is_some() {
            ("ConfigMap", &source["configMapRef"])
        } else if source.get("secretRef").is_some() {
            ("Secret", &source["secretRef"])
        } else {
            panic!("{what}: envFrom entry {source} is neither configMapRef nor secretRef")
        };
        let name = reference["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: envFrom {kind} without a name"));
        for (k, v) in entries(find(docs, kind, name, what)) {
            let key = format!("{prefix}{k}");
            setters
                .entry(key.clone())
                .or_default()
                .push(format!("{kind} {name}"));
            env.insert(key, v);
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: env entry without a name: {var}"));
        let value = if let Some(v) = var.get("value") {
            v.as_str()
                .unwrap_or_else(|| panic!("{what}: env {name} is {v}, not a string"))
                .to_string()
        } else if let Some((kind, r)) = [("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")]
            .into_iter()
            .find_map(|(kind, field)| var["valueFrom"].get(field).map(|r| (kind, r)))
        {
            let source = find(docs, kind, r["name"].as_str().unwrap_or(""), what);
            let key = r["key"].as_str().unwrap_or("");
            entries(source).remove(key).unwrap_or_else(|| {
                panic!(
                    "{what}: env {name} refers to {}, which has no {key}",
                    source.what()
                )
            })
        } else {
            panic!("{what}: env {name}: only value, configMapKeyRef and secretKeyRef are understood here")
        };
        setters.entry(name.to_string()).or_default().push("env".into());
        env.insert(name.to_string(), value);
    }
    (env, setters)
}

/// The environment variables the binary reads: every `env` that clap declares, on every
/// command, plus those read outside clap.
fn variables_the_binary_reads() -> BTreeSet<String> {
    fn walk(command: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut vars = BTreeSet::new();
    walk(&Cli::command(), &mut vars);
    // Settings::resolve falls back to RUST_LOG when LOG_LEVEL is unset.
    assert!(
        include_str!("../src/settings.rs").contains(r#"env::var("RUST_LOG")"#),
        "settings.rs no longer reads RUST_LOG: drop it from this list"
    );
    vars.insert("RUST_LOG".into());
    vars
}

/// The process environment is global, and the tests of this file run in parallel: whatever
/// sets it, or parses a command line (clap reads it), holds this lock.
static ENVIRONMENT: Mutex<()> = Mutex::new(());

/// Runs `f` with exactly `vars` set among `managed` (the variables the binary reads), so that
/// the test runner's own `DATABASE_URL` or `LOG_LEVEL` cannot leak into what a pod would see,
/// then puts the environment back.
fn with_environment<T>(
    managed: &BTreeSet<String>,
    vars: &BTreeMap<String, String>,
    f: impl FnOnce() -> T,
) -> T {
    let _lock = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    let touched: BTreeSet<&String> = managed.iter().chain(vars.keys()).collect();
    let saved: Vec<(&String, Option<OsString>)> = touched.iter().map(|k| (*k, std::env::var_os(k))).collect();
    // SAFETY: changing the environment races only with a concurrent read outside std's own
    // environment lock (C code calling getenv). The tests of this binary run no such code (no
    // database, no network), and those that read the environment through std hold ENVIRONMENT.
    unsafe {
        for k in managed {
            std::env::remove_var(k);
        }
        for (k, v) in vars {
            std::env::set_var(k, v);
        }
    }
    let result = catch_unwind(AssertUnwindSafe(f));
    // SAFETY: as above.
    unsafe {
        for (k, v) in saved {
            match v {
                Some(v) => std::env::set_var(k, v),
                None => std::env::remove_var(k),
            }
        }
    }
    result.unwrap_or_else(|panic| resume_unwind(panic))
}

/// Parses and resolves a command line the way `main` does, with exactly `env` set.
fn resolve(argv: &[String], env: &BTreeMap<String, String>) -> Result<Settings, String> {
    with_environment(&variables_the_binary_reads(), env, || {
        let cli = Cli::try_parse_from(argv).map_err(|e| e.render().to_string())?;
        Settings::resolve(cli).map_err(|e| e.to_string())
    })
}

/// The command line a container runs: the image's entrypoint (`binance-extractor`, checked by
/// the Dockerfile test) or its `command`, then its `args`.
fn command_line(container: &Value, what: &str) -> Vec<String> {
    let strings = |field: &str| -> Vec<String> {
        match &container[field] {
            Value::Null => Vec::new(),
            Value::Array(items) => items
                .iter()
                .map(|s| {
                    let s = s
                        .as_str()
                        .unwrap_or_else(|| panic!("{what}: {field} holds {s}, not a string"));
                    assert!(
                        !s.contains("$("),
                        "{what}: {field} uses $(VAR) expansion, which this test does not model"
                    );
                    s.to_string()
                })
                .collect(),
            other => panic!("{what}: {field} is {other}, not a list"),
        }
    };
    let mut argv = vec!["binance-extractor".to_string()];
    let command = strings("command");
    if let Some((program, rest)) = command.split_first() {
        assert!(
            program == "binance-extractor" || program == "/usr/local/bin/binance-extractor",
            "{what}: command runs {program}, not binance-extractor"
        );
        argv.extend(rest.iter().cloned());
    }
    argv.extend(strings("args"));
    argv
}

/// Minutes of the day at which a cron schedule fires. Only schedules that run every day are
/// understood (day of month, month and day of week `*`), which is what every job here needs.
fn firing_minutes(schedule: &str) -> BTreeSet<u32> {
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    assert!(
        fields.len() == 5 && fields[2..] == ["*", "*", "*"],
        "schedule '{schedule}': expected 'MINUTE HOUR * * *'"
    );
    let minutes = cron_field(fields[0], 0, 59, schedule);
    let hours = cron_field(fields[1], 0, 23, schedule);
    hours
        .iter()
        .flat_map(|h| minutes.iter().map(move |m| h * 60 + m))
        .collect()
}

/// One cron field (`5`, `*`, `*/15`, `1-59/15`, `0,30`), as robfig/cron (Kubernetes) reads it.
fn cron_field(field: &str, min: u32, max: u32, schedule: &str) -> BTreeSet<u32> {
    let number = |s: &str| -> u32 {
        s.parse()
            .unwrap_or_else(|_| panic!("schedule '{schedule}': '{s}' is not a number"))
    };
    let mut out = BTreeSet::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, number(step)),
            None => (part, 1),
        };
        let (lo, hi) = match range.split_once('-') {
            _ if range == "*" => (min, max),
            Some((lo, hi)) => (number(lo), number(hi)),
            None if step > 1 => (number(range), max),
            None => (number(range), number(range)),
        };
        assert!(
            step >= 1 && min <= lo && lo <= hi && hi <= max,
            "schedule '{schedule}': '{part}' is out of {min}-{max}"
        );
        out.extend((lo..=hi).step_by(step as usize));
    }
    out
}

/// The longest wait, in minutes, between two consecutive runs (across midnight too).
fn longest_wait(minutes: &BTreeSet<u32>) -> u32 {
    let first = *minutes.first().expect("fires at least once a day");
    let mut previous = first;
    let mut longest = 0;
    for &m in minutes.iter().skip(1) {
        longest = longest.max(m - previous);
        previous = m;
    }
    longest.max(first + MINUTES_PER_DAY - previous)
}

fn positive_integer(v: &Value, what: &str, field: &str) -> u64 {
    v.as_u64()
        .filter(|n| *n > 0)
        .unwrap_or_else(|| panic!("{what}: {field} must be a positive integer, got {v}"))
}

/// What one CronJob runs, once checked.
struct Checked {
    job: &'static str,
    period: String,
}

fn check_cronjob(cron: &Doc, docs: &[Doc], reads: &BTreeSet<String>, image_uid: u32) -> Checked {
    let what = cron.what();
    let spec = &cron.value["spec"];
    let job_spec = &spec["jobTemplate"]["spec"];
    let pod = &job_spec["template"]["spec"];

    assert!(
        cron.name().len() <= MAX_CRONJOB_NAME,
        "{what}: Kubernetes limits CronJob names to {MAX_CRONJOB_NAME} characters"
    );
    assert_eq!(
        spec["concurrencyPolicy"], "Forbid",
        "{what}: two runs of one job must never overlap"
    );
    assert!(
        matches!(spec["timeZone"].as_str(), Some("Etc/UTC" | "UTC")),
        "{what}: set timeZone: Etc/UTC, the candles' time zone (else the controller's local time applies)"
    );
    positive_integer(&spec["startingDeadlineSeconds"], &what, "startingDeadlineSeconds");
    for limit in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        positive_integer(&spec[limit], &what, limit);
    }
    let run_deadline = positive_integer(&job_spec["activeDeadlineSeconds"], &what, "activeDeadlineSeconds");
    assert!(
        job_spec["backoffLimit"].is_u64(),
        "{what}: set backoffLimit (the default, 6, retries a failing run for a long time)"
    );
    assert_eq!(
        pod["restartPolicy"], "Never",
        "{what}: a failed run is retried as a new pod"
    );

    let containers = pod["containers"]
        .as_array()
        .filter(|c| c.len() == 1)
        .unwrap_or_else(|| panic!("{what}: expected exactly one container"));
    let container = &containers[0];
    let what = format!("{what}, container {}", container["name"].as_str().unwrap_or("?"));
    assert!(container["image"].is_string(), "{what}: no image");

    // Resources.
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            let v = &container["resources"][bound][resource];
            assert!(
                v.is_string() || v.is_number(),
                "{what}: set resources.{bound}.{resource}"
            );
        }
    }

    // Security: the container's context overrides the pod's.
    let security = |field: &str| -> &Value {
        match &container["securityContext"][field] {
            Value::Null => &pod["securityContext"][field],
            v => v,
        }
    };
    assert_eq!(
        security("runAsNonRoot"),
        &Value::Bool(true),
        "{what}: set runAsNonRoot: true"
    );
    if let Some(uid) = security("runAsUser").as_u64() {
        assert_eq!(
            uid,
            u64::from(image_uid),
            "{what}: runAsUser differs from the Dockerfile's USER, which owns /data"
        );
    }
    let own = &container["securityContext"];
    assert_eq!(
        own["readOnlyRootFilesystem"], true,
        "{what}: set readOnlyRootFilesystem: true"
    );
    assert_eq!(
        own["allowPrivilegeEscalation"], false,
        "{what}: set allowPrivilegeEscalation: false"
    );
    assert!(
        own["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|c| c == "ALL")),
        "{what}: drop ALL capabilities"
    );
    let volumes: BTreeSet<&str> = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let name = mount["name"].as_str().unwrap_or("");
        assert!(
            volumes.contains(name),
            "{what}: mounts volume {name}, which the pod does not declare"
        );
    }

    // Environment: only variables the binary reads; the Secret has the last word.
    let (env, setters) = container_environment(container, docs, &what);
    let unknown: Vec<&String> = env.keys().filter(|k| !reads.contains(*k)).collect();
    assert!(
        unknown.is_empty(),
        "{what}: sets {unknown:?}, which binance-extractor does not read; it reads {reads:?}"
    );
    for (var, sources) in &setters {
        let from_secret = sources.iter().any(|s| s.starts_with("Secret"));
        assert!(
            !(from_secret && sources.last().is_some_and(|s| s.starts_with("ConfigMap"))),
            "{what}: {var} is set by {sources:?}: list the Secret after the ConfigMap in envFrom, \
             or the ConfigMap's value replaces the Secret's"
        );
    }

    // The command line, through the binary's own parser and settings.
    let argv = command_line(container, &what);
    let settings = resolve(&argv, &env).unwrap_or_else(|e| {
        let names: Vec<&String> = env.keys().collect();
        panic!("{what}: binance-extractor rejects {argv:?} with {names:?} set:\n{e}")
    });
    let job = settings.job.name();
    let period = settings.job.series().interval;
    assert!(
        cron.name().ends_with(&format!("-{job}-{period}")),
        "{what}: runs {job} --period {period}, which its name does not say"
    );
    assert!(
        !matches!(settings.database.backend(), Backend::Sqlite),
        "{what}: DATABASE_URL is SQLite, whose file would vanish with the pod"
    );
    assert_eq!(
        settings.log.format,
        LogFormat::Json,
        "{what}: set LOG_FORMAT=json for the cluster's log collector"
    );

    // The schedule fits the job.
    let schedule = spec["schedule"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no schedule"));
    let fires = firing_minutes(schedule);
    let wait = longest_wait(&fires);
    match &settings.job {
        JobSettings::Sync { .. } => {
            let period_ms = period.fixed_ms().expect("a fixed-length period");
            let period_minutes = u32::try_from(period_ms / 60_000).expect("minutes");
            assert!(
                period_minutes >= 1 && wait <= period_minutes,
                "{what}: '{schedule}' can wait {wait} minutes between runs, longer than one {period} candle"
            );
            assert!(
                fires.iter().all(|m| m % period_minutes != 0),
                "{what}: '{schedule}' fires exactly when a {period} candle closes; start a minute later"
            );
            assert!(
                run_deadline < u64::from(period_minutes) * 60,
                "{what}: activeDeadlineSeconds {run_deadline} is longer than one period: a stuck run would make the next skip"
            );
        }
        JobSettings::FillGaps { .. } => assert!(
            wait <= MINUTES_PER_DAY,
            "{what}: '{schedule}' does not run every day"
        ),
        other => panic!("{what}: runs {}, which is not a scheduled job", other.name()),
    }
    Checked {
        job,
        period: period.to_string(),
    }
}

#[test]
fn every_cronjob_runs_a_command_the_binary_accepts_with_variables_it_reads() {
    let docs = documents();
    let reads = variables_the_binary_reads();
    let uid = final_user(&dockerfile()).0;
    let mut jobs = BTreeSet::new();
    for cron in docs.iter().filter(|d| d.kind() == "CronJob") {
        let checked = check_cronjob(cron, &docs, &reads, uid);
        assert!(
            jobs.insert((checked.job, checked.period.clone())),
            "{}: a second CronJob for {} {}",
            cron.what(),
            checked.job,
            checked.period
        );
    }
    for wanted in [
        ("sync", "15m"),
        ("sync", "1h"),
        ("sync", "1d"),
        ("fill-gaps", "15m"),
    ] {
        assert!(
            jobs.contains(&(wanted.0, wanted.1.to_string())),
            "no CronJob runs {} --period {}",
            wanted.0,
            wanted.1
        );
    }
}

#[test]
fn configmaps_and_secrets_set_only_variables_the_binary_reads() {
    let reads = variables_the_binary_reads();
    for doc in documents()
        .iter()
        .filter(|d| matches!(d.kind(), "ConfigMap" | "Secret"))
    {
        for key in entries(doc).keys() {
            assert!(
                reads.contains(key),
                "{}: {key} is not a variable binance-extractor reads; it reads {reads:?}",
                doc.what()
            );
        }
    }
}

#[test]
fn the_secret_example_holds_the_database_and_placeholders_only() {
    let docs = documents();
    let secret = docs
        .iter()
        .find(|d| d.kind() == "Secret")
        .expect("a Secret example");
    assert!(
        secret.file.contains("example"),
        "{}: name the file *.example.yaml",
        secret.what()
    );
    let values = entries(secret);
    let database = values.get("DATABASE_URL").expect("DATABASE_URL in the Secret");
    for value in values.values() {
        if value.contains('@') {
            assert!(
                value.contains("CHANGE_ME"),
                "{}: {value} looks like a real credential; use CHANGE_ME",
                secret.what()
            );
        }
    }
    assert!(
        database.starts_with("mysql://") || database.starts_with("postgres"),
        "{database}"
    );
}

#[test]
fn the_kustomization_lists_every_manifest_but_the_secret_example() {
    let docs = documents();
    let kustomization = docs
        .iter()
        .find(|d| d.kind() == "Kustomization")
        .expect("deploy/kubernetes/kustomization.yaml");
    let listed: BTreeSet<&str> = kustomization.value["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("a file name"))
        .collect();
    let wanted: BTreeSet<&str> = docs
        .iter()
        .map(|d| d.file.as_str())
        .filter(|f| *f != kustomization.file && !f.contains(".example."))
        .collect();
    assert_eq!(listed, wanted, "kustomization.yaml resources");
    let images: BTreeSet<&str> = kustomization.value["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["name"].as_str())
        .collect();
    for cron in docs.iter().filter(|d| d.kind() == "CronJob") {
        for c in cron.value["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let image = c["image"].as_str().unwrap_or("");
            assert!(
                images.contains(image),
                "{}: kustomization.yaml does not set image {image}",
                cron.what()
            );
        }
    }
}

#[test]
fn the_cron_reader_sees_the_python_schedule_bug() {
    // The replaced jobs meant "every 15 minutes" and ran at 00:02 and 15:02.
    assert_eq!(firing_minutes("2 */15 * * *"), BTreeSet::from([2, 15 * 60 + 2]));
    assert_eq!(longest_wait(&firing_minutes("2 */15 * * *")), 15 * 60);
    assert_eq!(firing_minutes("1-59/15 0 * * *"), BTreeSet::from([1, 16, 31, 46]));
    assert_eq!(longest_wait(&firing_minutes("1-59/15 * * * *")), 15);
    assert_eq!(longest_wait(&firing_minutes("5 0 * * *")), MINUTES_PER_DAY);
}

#[test]
fn an_unknown_flag_or_value_is_rejected() {
    // The check above is only worth something if the parser really says no.
    let argv = |args: &[&str]| -> Vec<String> {
        std::iter::once("binance-extractor")
            .chain(args.iter().copied())
            .map(String::from)
            .collect()
    };
    let env = BTreeMap::new();
    assert!(resolve(&argv(&["sync", "--period", "15m"]), &env).is_ok());
    assert!(resolve(&argv(&["sync", "--period", "15m", "--metrics-push", "x"]), &env).is_err());
    assert!(resolve(&argv(&["sync", "--period", "7m"]), &env).is_err());
    let workers = BTreeMap::from([("MAX_WORKERS".to_string(), "0".to_string())]);
    assert!(resolve(&argv(&["sync", "--period", "15m"]), &workers).is_err());
}

// ---- the Dockerfile -------------------------------------------------------------------------

/// One Dockerfile instruction, continuation lines joined.
#[derive(Debug)]
struct Instruction {
    line: usize,
    keyword: String,
    args: String,
}

/// One build stage: `FROM base [AS name]` and what follows.
#[derive(Debug)]
struct Stage {
    base: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

fn dockerfile() -> Vec<Stage> {
    let text = read(&repository().join("Dockerfile"));
    let mut instructions: Vec<Instruction> = Vec::new();
    let mut pending: Option<Instruction> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue; // comments, parser directives, blank lines (also inside continuations)
        }
        let (body, continues) = match line.strip_suffix('\\') {
            Some(body) => (body.trim_end(), true),
            None => (line, false),
        };
        match &mut pending {
            Some(ins) => {
                ins.args.push(' ');
                ins.args.push_str(body);
            }
            None => {
                let (keyword, args) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
                pending = Some(Instruction {
                    line: i + 1,
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_string(),
                });
            }
        }
        if !continues {
            instructions.extend(pending.take());
        }
    }
    instructions.extend(pending.take());

    let mut stages: Vec<Stage> = Vec::new();
    for ins in instructions {
        if ins.keyword == "FROM" {
            let words: Vec<&str> = ins
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                [_] => None,
                _ => panic!("Dockerfile line {}: cannot read FROM {}", ins.line, ins.args),
            };
            stages.push(Stage {
                base: words[0].to_string(),
                name,
                instructions: Vec::new(),
            });
        } else {
            stages
                .last_mut()
                .unwrap_or_else(|| panic!("Dockerfile line {}: {} before FROM", ins.line, ins.keyword))
                .instructions
                .push(ins);
        }
    }
    stages
}

/// The final stage's USER, as (uid, line): numeric and not root.
fn final_user(stages: &[Stage]) -> (u32, usize) {
    let last = stages.last().expect("a FROM");
    let user = last
        .instructions
        .iter()
        .rfind(|i| i.keyword == "USER")
        .expect("the final stage sets USER (else the image runs as root)");
    let uid = user.args.split(':').next().unwrap_or("");
    let uid: u32 = uid.parse().unwrap_or_else(|_| {
        panic!(
            "Dockerfile line {}: USER {}: use a numeric uid, so that Kubernetes' runAsNonRoot can verify it",
            user.line, user.args
        )
    });
    assert_ne!(
        uid, 0,
        "Dockerfile line {}: the image must not run as root",
        user.line
    );
    (uid, user.line)
}

/// An exec-form (`["a", "b"]`) instruction's words.
fn exec_form(ins: &Instruction) -> Vec<String> {
    serde_json::from_str(&ins.args).unwrap_or_else(|_| {
        panic!(
            "Dockerfile line {}: {} {} is not exec form ([\"…\"]): a shell would swallow SIGTERM",
            ins.line, ins.keyword, ins.args
        )
    })
}

/// `COPY [--flags] SRC… DEST`: (flags, sources, destination).
fn copy_parts(ins: &Instruction) -> (Vec<&str>, Vec<&str>, &str) {
    let words: Vec<&str> = ins.args.split_whitespace().collect();
    let (flags, rest): (Vec<&str>, Vec<&str>) = words.into_iter().partition(|w| w.starts_with("--"));
    let (dest, sources) = rest
        .split_last()
        .unwrap_or_else(|| panic!("Dockerfile line {}: COPY without a destination", ins.line));
    (flags, sources.to_vec(), dest)
}

/// `(major, minor)` of a `1.88` or `1.95-slim-bookworm` version.
fn rust_version(s: &str) -> (u32, u32) {
    let mut parts = s.split(['.', '-']);
    let mut next = || {
        parts
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("version '{s}'"))
    };
    (next(), next())
}

/// Directories of the workspace members (`members = ["crates/*"]`).
fn workspace_members() -> Vec<String> {
    let manifest = read(&repository().join("Cargo.toml"));
    assert!(
        manifest.contains(r#"members = ["crates/*"]"#),
        "the workspace members changed: update workspace_members()"
    );
    let mut members: Vec<String> = fs::read_dir(repository().join("crates"))
        .expect("crates/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .map(|p| format!("crates/{}", p.file_name().expect("name").to_string_lossy()))
        .collect();
    members.sort();
    members
}

#[test]
fn the_dockerfile_builds_both_binaries_into_a_non_root_image() {
    let stages = dockerfile();
    assert!(
        stages.len() >= 2,
        "a multi-stage build: the runtime image holds no toolchain"
    );
    let runtime = stages.last().expect("stages");
    assert!(
        !runtime.base.starts_with("rust:"),
        "the final stage {} is the toolchain image",
        runtime.base
    );

    // The builder: a Rust toolchain at least the workspace's rust-version.
    let builder = stages
        .iter()
        .find(|s| s.base.starts_with("rust:"))
        .expect("a stage FROM rust:VERSION");
    let workspace = read(&repository().join("Cargo.toml"));
    let minimum = workspace
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = "))
        .map(|v| rust_version(v.trim_matches('"')))
        .expect("rust-version in Cargo.toml");
    let toolchain = rust_version(builder.base.trim_start_matches("rust:"));
    assert!(
        toolchain >= minimum,
        "{} is older than rust-version {minimum:?}",
        builder.base
    );

    // Dependencies are built from the manifests alone, then the sources.
    let builds: Vec<&Instruction> = builder
        .instructions
        .iter()
        .filter(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .collect();
    let first_build = builds.first().expect("a RUN cargo build").line;
    for build in &builds {
        for wanted in ["--release", "--locked"] {
            assert!(
                build.args.contains(wanted),
                "Dockerfile line {}: cargo build without {wanted}",
                build.line
            );
        }
        for bin in BINARIES {
            assert!(
                build.args.contains(&format!("-p {bin}")),
                "Dockerfile line {}: cargo build does not build {bin}",
                build.line
            );
        }
    }
    let copied_before_build: Vec<&str> = builder
        .instructions
        .iter()
        .filter(|i| i.keyword == "COPY" && i.line < first_build)
        .flat_map(|i| copy_parts(i).1)
        .collect();
    for source in &copied_before_build {
        assert!(
            repository().join(source).exists(),
            "the Dockerfile copies {source}, which does not exist"
        );
    }
    for wanted in ["Cargo.toml", "Cargo.lock"] {
        assert!(
            copied_before_build.contains(&wanted),
            "{wanted} is not copied before the first cargo build"
        );
    }
    for member in workspace_members() {
        let manifest = format!("{member}/Cargo.toml");
        assert!(
            copied_before_build
                .iter()
                .any(|s| [manifest.as_str(), member.as_str(), "crates"].contains(&s.trim_end_matches('/'))),
            "{manifest} is not copied before the first cargo build: every workspace member is needed for --locked"
        );
    }

    // The runtime: both binaries from the builder, a non-root user, the extractor as entrypoint.
    let builder_ref = builder
        .name
        .as_deref()
        .expect("name the builder stage (FROM … AS builder)");
    for bin in BINARIES {
        let copied = runtime
            .instructions
            .iter()
            .filter(|i| i.keyword == "COPY")
            .any(|i| {
                let (flags, sources, dest) = copy_parts(i);
                flags.contains(&format!("--from={builder_ref}").as_str())
                    && sources.iter().any(|s| s.ends_with(&format!("/release/{bin}")))
                    && (dest == "/usr/local/bin/" || dest == format!("/usr/local/bin/{bin}"))
            });
        assert!(
            copied,
            "the final stage does not copy {bin} from {builder_ref} to /usr/local/bin/"
        );
    }
    final_user(&stages);
    let last = |keyword: &str| runtime.instructions.iter().rfind(|i| i.keyword == keyword);
    let entrypoint = last("ENTRYPOINT").expect("an ENTRYPOINT");
    assert_eq!(
        exec_form(entrypoint),
        ["binance-extractor"],
        "Dockerfile line {}",
        entrypoint.line
    );
    if let Some(cmd) = last("CMD") {
        exec_form(cmd);
    }
    let workdir = last("WORKDIR").expect("a WORKDIR");
    assert_eq!(
        workdir.args, "/data",
        "the default sqlite://binance-klines.db lands in WORKDIR"
    );
    assert!(
        runtime
            .instructions
            .iter()
            .any(|i| i.keyword == "RUN" && i.args.contains("/data")),
        "the final stage does not create /data for its user"
    );
}

// ---- .dockerignore --------------------------------------------------------------------------

/// `.dockerignore` as Docker reads it: the last matching pattern decides, `!` re-includes, and a
/// pattern that matches a directory matches everything under it.
struct DockerIgnore {
    /// (re-include?, pattern components)
    patterns: Vec<(bool, Vec<String>)>,
}

impl DockerIgnore {
    fn load() -> DockerIgnore {
        let text = read(&repository().join(".dockerignore"));
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (include, pattern) = match l.strip_prefix('!') {
                    Some(p) => (true, p),
                    None => (false, l),
                };
                let components = pattern
                    .trim_start_matches("./")
                    .trim_matches('/')
                    .split('/')
                    .map(String::from)
                    .collect();
                (include, components)
            })
            .collect();
        DockerIgnore { patterns }
    }

    fn ignores(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let mut ignored = false;
        for (include, pattern) in &self.patterns {
            let matched = (1..=parts.len()).any(|n| components_match(pattern, &parts[..n]));
            if matched {
                ignored = !include;
            }
        }
        ignored
    }
}

fn components_match(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => (0..=path.len()).any(|skip| components_match(rest, &path[skip..])),
        Some((p, rest)) => path
            .split_first()
            .is_some_and(|(c, tail)| glob(p.as_bytes(), c.as_bytes()) && components_match(rest, tail)),
    }
}

/// `*` and `?` within one path component.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[test]
fn the_dockerignore_sends_what_the_build_needs_and_not_the_rest() {
    let ignore = DockerIgnore::load();
    let root = repository();
    let mut needed = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
    for member in workspace_members() {
        needed.push(format!("{member}/Cargo.toml"));
        for dir in ["src", "migrations"] {
            let path = root.join(&member).join(dir);
            if path.is_dir() {
                needed.extend(files_under(&root, &path));
            }
        }
    }
    for file in &needed {
        assert!(
            !ignore.ignores(file),
            ".dockerignore leaves out {file}, which the build needs"
        );
    }
    for file in [
        "target/release/binance-extractor",
        ".git/HEAD",
        "binance-klines.db",
        "crates/binance-extractor/tests/manifests.rs",
        "deploy/kubernetes/configmap.yaml",
    ] {
        assert!(ignore.ignores(file), ".dockerignore sends {file} to the build");
    }
}
