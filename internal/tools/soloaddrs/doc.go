// Command soloaddrs prints a users file for cmd/stratum-load of distinct
// solo miners: n lines "solo:<address>", each a P2WPKH address of the
// network whose 20-byte key hash is the line number, so that every
// connection of a load run mines solo to its own address. It is the
// input of the solo-mining measurement in docs/BENCHMARKS.md:
//
//	go run ./internal/tools/soloaddrs -n 10000 > solo.txt
//	bin/stratum-load -addr 127.0.0.1:3334 -conns 10000 -idle -users-file solo.txt ...
package main
