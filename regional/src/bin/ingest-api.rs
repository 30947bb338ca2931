//! The API Gateway ingest Lambda (the path edgehose is compared with).

use edgehose_regional::ingest::{IngestApi, misconfigured};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    match IngestApi::from_env() {
        Ok(api) => lambda_http::run(lambda_http::service_fn(|req| api.handle(req))).await,
        // Misconfigured: said once here, and a 500 naming the setting to
        // every request (with CORS), as the edge does, instead of an init
        // failure that API Gateway turns into a bare 500 on every cold start.
        Err(e) => {
            lambda_http::tracing::error!(error = %e, "misconfigured, answering 500 to every request");
            let e = &e;
            lambda_http::run(lambda_http::service_fn(move |req| async move {
                Ok::<_, lambda_http::Error>(misconfigured(e, &req))
            }))
            .await
        }
    }
}
