//! `extract`: every closed kline whose open time is in `[start, end)`.

use std::sync::Arc;

use super::{finish_range, series};
use crate::{
    events::ExtractionType,
    pipeline::{Context, SymbolJob, SymbolOutcome, fetch_into_store},
    series::{Symbol, TimeRange},
};

/// The `extract` job.
#[derive(Debug, Clone)]
pub struct Extract {
    /// Open times wanted; the end is clipped to the candle forming now.
    pub range: TimeRange,
}

impl SymbolJob for Extract {
    fn extraction_type(&self) -> ExtractionType {
        ExtractionType::Klines
    }

    async fn run_symbol(&self, ctx: Arc<Context>, symbol: Symbol) -> SymbolOutcome {
        let key = series(&ctx, symbol);
        let range = TimeRange::new(self.range.start, self.range.end.min(ctx.forming_open()));
        let fetch = fetch_into_store(&ctx, &key, range, None).await;
        finish_range(&ctx, &key, range, fetch).await
    }
}
