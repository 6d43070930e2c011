// Package payout splits matured block rewards among miners with PPLNS and
// pays balances through btcwallet. Its maths is pure and table-tested; its
// payment steps run under an advisory lock and are safe to rerun at any point.
package payout
