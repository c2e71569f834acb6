//! The engine service binary: the shared service `main` with the engine's settings and
//! fold (`engine::service`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ::service::main::<engine::service::EngineConfig>().await
}
