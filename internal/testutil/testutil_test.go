package testutil

import "testing"

// TestScriptOutput: the variable wins when set; otherwise the script runs,
// and a script that fails (here: one that does not exist) is an error.
func TestScriptOutput(t *testing.T) {
	t.Setenv("STRATUMD_TESTUTIL_X", "/opt/x")
	if got, err := ScriptOutput("STRATUMD_TESTUTIL_X", "no-such-script.sh"); err != nil || got != "/opt/x" {
		t.Fatalf("with the variable set: %q %v", got, err)
	}
	t.Setenv("STRATUMD_TESTUTIL_X", "")
	if got, err := ScriptOutput("STRATUMD_TESTUTIL_X", "no-such-script.sh"); err == nil {
		t.Fatalf("missing script: %q, no error", got)
	}
}
