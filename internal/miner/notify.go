package miner

import "encoding/json"

// ParseNotify decodes mining.notify params as the miner does, for a session
// with extranonce1 en1, extranonce2 size en2Size, share difficulty diff and
// version-rolling mask mask. Tests that speak a firmware's lines
// themselves use it to find shares with the job's Hash and ShareTarget.
func ParseNotify(params json.RawMessage, en1 []byte, en2Size int, diff float64, mask uint32) (*Job, error) {
	j, err := parseNotify(params)
	if err != nil {
		return nil, err
	}
	j.Extranonce1, j.Extranonce2Size, j.Difficulty, j.VersionMask = en1, en2Size, diff, mask
	return j, nil
}
