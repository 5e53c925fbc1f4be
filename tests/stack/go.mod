module github.com/ecomstream/ecomstream/tests/stack

go 1.26.0

require (
	github.com/ecomstream/ecomstream/services/common v0.0.0
	github.com/ecomstream/ecomstream/sql v0.0.0
)

replace (
	github.com/ecomstream/ecomstream/services/common => ../../services/common
	github.com/ecomstream/ecomstream/sql => ../../sql
)
