//! `greg demo`.
pub async fn run() -> std::process::ExitCode {
    std::process::ExitCode::from(1)
}
