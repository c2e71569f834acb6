//! The economy service binary: the shared service `main` with the economy's settings
//! and fold (`economy::service`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ::service::main::<economy::service::EconomyConfig>().await
}
