//! OTTL (the OpenTelemetry Transformation Language) as the 0.151.0 collector's transform and
//! filter processors accept it for traces: lexer, parser, printer and checker.

pub mod context;
mod functions;
#[rustfmt::skip]
mod tables;
