module github.com/ecomstream/ecomstream/tests/e2e

go 1.26.0

require (
	github.com/ecomstream/ecomstream/services/common v0.0.0
	github.com/jackc/pgx/v5 v5.12.0
)

require (
	github.com/ecomstream/ecomstream/sql v0.0.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/mattn/go-colorable v0.1.15 // indirect
	github.com/mattn/go-isatty v0.0.22 // indirect
	github.com/rs/zerolog v1.35.1 // indirect
	golang.org/x/sync v0.23.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
)

replace (
	github.com/ecomstream/ecomstream/services/common => ../../services/common
	github.com/ecomstream/ecomstream/sql => ../../sql
)
