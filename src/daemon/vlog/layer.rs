//! The `tracing` side: a [`Layer`] that feeds events into a [`Logger`].
//!
//! Cheap when disabled: `register_callsite` answers `always`/`never` from the current levels
//! (and `max_level_hint` gives tracing's global fast filter), so a disabled `debug!` costs one
//! relaxed load and a compare. Whoever changes levels or opens/closes the file must call
//! `tracing::callsite::rebuild_interest_cache()` afterwards ([`super::Vlog`] does).

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::logger::Logger;
use super::spec::{module_for_target, Level};

/// Field that turns an `error!` into an EMER message (`error!(target: "x", emer = true, ...)`,
/// or use `vlog_emer!`).
pub const EMER_FIELD: &str = "emer";

/// The vlog level of a call site: ERROR→ERR (EMER with an `emer` field), WARN→WARN,
/// INFO→INFO, DEBUG and TRACE→DBG.
pub fn level_of(meta: &Metadata<'_>) -> Level {
    match *meta.level() {
        tracing::Level::ERROR => {
            if meta.fields().field(EMER_FIELD).is_some() {
                Level::Emer
            } else {
                Level::Err
            }
        }
        tracing::Level::WARN => Level::Warn,
        tracing::Level::INFO => Level::Info,
        _ => Level::Dbg,
    }
}

/// `tracing` level filter letting through everything at or above `level`.
pub fn level_filter(level: Level) -> LevelFilter {
    match level {
        Level::Off => LevelFilter::OFF,
        Level::Emer | Level::Err => LevelFilter::ERROR,
        Level::Warn => LevelFilter::WARN,
        Level::Info => LevelFilter::INFO,
        Level::Dbg => LevelFilter::TRACE,
    }
}

/// Collects an event's message (the `message` field) and appends other fields as
/// ` name=value`.
#[derive(Default)]
struct MsgVisitor {
    message: String,
    extra: String,
}

impl MsgVisitor {
    fn skip(field: &Field) -> bool {
        field.name() == EMER_FIELD || field.name().starts_with("log.")
    }
    fn finish(mut self) -> String {
        self.message.push_str(&self.extra);
        self.message
    }
}

impl Visit for MsgVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else if !Self::skip(field) {
            let _ = write!(self.extra, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else if !Self::skip(field) {
            let _ = write!(self.extra, " {}={:?}", field.name(), value);
        }
    }
}

thread_local! {
    /// Set while this thread formats or writes an event: an event raised from inside (e.g. by
    /// a `Debug` impl that logs) is dropped instead of deadlocking on the logger.
    static IN_EVENT: Cell<bool> = const { Cell::new(false) };
}

/// The vlog `tracing` layer.
#[derive(Clone)]
pub struct VlogLayer {
    logger: Arc<Logger>,
}

impl VlogLayer {
    pub fn new(logger: Arc<Logger>) -> VlogLayer {
        VlogLayer { logger }
    }

    fn wanted(&self, meta: &Metadata<'_>) -> bool {
        meta.is_event()
            && self
                .logger
                .is_enabled(module_for_target(meta.target()), level_of(meta))
    }
}

impl<S: Subscriber> Layer<S> for VlogLayer {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.wanted(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.wanted(meta)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(level_filter(self.logger.max_level()))
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if IN_EVENT.with(|f| f.replace(true)) {
            return;
        }
        let meta = event.metadata();
        let module = module_for_target(meta.target());
        let level = level_of(meta);
        if self.logger.is_enabled(module, level) {
            let mut v = MsgVisitor::default();
            event.record(&mut v);
            self.logger.log(module, level, &v.finish());
        }
        IN_EVENT.with(|f| f.set(false));
    }
}
