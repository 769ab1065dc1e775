//! `binance-extractor check`: are the database, Binance and NATS usable right now?
//!
//! Meant for people and for Kubernetes (an init container, or a probe): one row per
//! dependency, exit 0 only if every one passes. Nothing secret is printed.

use std::{sync::Arc, time::Duration};

use crate::{
    binance::{BinanceClient, ClientConfig, RetryPolicy, WeightBudget},
    clock::system_now_ms,
    events::{EventPublisher, redact_nats_url},
    settings::Settings,
    store::Store,
};

/// One dependency's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Runs every check.
pub async fn run(settings: &Settings) -> Vec<Check> {
    let (database, binance, nats) = tokio::join!(database(settings), binance(settings), nats(settings));
    vec![database, binance, nats]
}

async fn database(settings: &Settings) -> Check {
    let name = "database";
    match Store::connect(&settings.database).await {
        Ok(store) => {
            store.close().await;
            Check {
                name,
                ok: true,
                detail: format!("{} reachable, schema up to date", settings.database),
            }
        }
        Err(e) => Check {
            name,
            ok: false,
            detail: e.to_string(),
        },
    }
}

async fn binance(settings: &Settings) -> Check {
    let name = "binance";
    let budget = Arc::new(WeightBudget::new(
        settings.market.default_weight_limit(),
        Duration::from_secs(60),
        0.9,
    ));
    let config = ClientConfig {
        base_url: settings.api_url.clone(),
        market: settings.market,
        request_timeout: settings.request_timeout.min(Duration::from_secs(10)),
        // A check answers now: no retries.
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
    };
    let fail = |detail: String| Check {
        name,
        ok: false,
        detail,
    };
    let client = match BinanceClient::new(config, budget.clone()) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    if let Err(e) = client.ping().await {
        return fail(format!("{} ({}): {e}", settings.api_url, settings.market));
    }
    let before = system_now_ms();
    let server = match client.server_time().await {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: time: {e}", settings.api_url)),
    };
    let local = (before + system_now_ms()) / 2;
    let drift = server - local;
    let stats = budget.stats();
    Check {
        name,
        ok: true,
        detail: format!(
            "{} ({}) answers; clock drift {drift:+} ms (runs use Binance's clock); weight used this minute {}",
            settings.api_url, settings.market, stats.used_in_window
        ),
    }
}

async fn nats(settings: &Settings) -> Check {
    let name = "nats";
    let shown = redact_nats_url(&settings.nats.url);
    if !settings.nats.enabled {
        return Check {
            name,
            ok: true,
            detail: "skipped: NATS_ENABLED=false".into(),
        };
    }
    let publisher = EventPublisher::connect(&settings.nats).await;
    let check = match (publisher.is_connected(), &settings.nats.jetstream) {
        (false, _) => Check {
            name,
            ok: false,
            detail: format!("cannot connect to {shown} (see the warning above)"),
        },
        (true, Some(js)) => Check {
            name,
            ok: true,
            detail: format!("{shown} connected; JetStream stream {} ready", js.stream),
        },
        (true, None) => Check {
            name,
            ok: true,
            detail: format!("{shown} connected (core NATS)"),
        },
    };
    publisher.close().await;
    check
}

/// The verdicts as a table.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::from("CHECK     RESULT  DETAIL\n");
    for c in checks {
        out.push_str(&format!(
            "{:<9} {:<7} {}\n",
            c.name,
            if c.ok { "ok" } else { "FAILED" },
            c.detail
        ));
    }
    out
}
