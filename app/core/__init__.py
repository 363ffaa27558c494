"""Cross-cutting pieces every domain uses: the model base and column types (db), the errors services raise (errors),
rate limits (ratelimit)."""
