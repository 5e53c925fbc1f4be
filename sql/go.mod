module github.com/ecomstream/ecomstream/sql

go 1.26.0
