//! The API Gateway ingest Lambda (the path edgehose is compared with).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let api = edgehose_regional::ingest::IngestApi::from_env()?;
    lambda_http::run(lambda_http::service_fn(|req| api.handle(req))).await
}
