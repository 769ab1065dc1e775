//! `sync`: the production job. Each symbol continues from its newest stored candle up to the
//! newest closed candle; a symbol with nothing stored starts at `--since` (Binance's first
//! kline after it, for a symbol listed later).

use std::sync::Arc;

use super::{finish_range, series};
use crate::{
    events::ExtractionType,
    pipeline::{Context, SymbolJob, SymbolOutcome, fetch_into_store},
    series::{Symbol, TimeRange},
};

/// The `sync` job.
#[derive(Debug, Clone)]
pub struct Sync {
    /// Where a symbol with nothing stored starts (epoch ms).
    pub since: i64,
}

impl SymbolJob for Sync {
    fn extraction_type(&self) -> ExtractionType {
        ExtractionType::Klines
    }

    async fn run_symbol(&self, ctx: Arc<Context>, symbol: Symbol) -> SymbolOutcome {
        let key = series(&ctx, symbol);
        let newest = match ctx.store.newest_open_time(&key).await {
            Ok(t) => t,
            Err(e) => {
                return SymbolOutcome {
                    errors: vec![format!("{}: {e}", key.symbol)],
                    ..SymbolOutcome::default()
                };
            }
        };
        let start = newest.map_or(self.since, |t| t + 1);
        let range = TimeRange::new(start, ctx.forming_open());
        if range.is_empty() {
            tracing::debug!(symbol = %key.symbol, "Already up to date.");
            return SymbolOutcome {
                range: Some(range),
                ..SymbolOutcome::default()
            };
        }
        let fetch = fetch_into_store(&ctx, &key, range, newest).await;
        finish_range(&ctx, &key, range, fetch).await
    }
}
