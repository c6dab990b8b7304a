package proxy

import (
	"testing"
	"time"

	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/policy/quota"
	"github.com/aigw/aigw/policy/route"
)

// TestEmergencyScopeGivesEmergencyClass: a key with the emergency scope
// authenticates to a principal whose requests queue as ClassEmergency;
// other keys start at the default class.
func TestEmergencyScopeGivesEmergencyClass(t *testing.T) {
	pol, _, err := configs.Load("../configs/examples/tiers.yaml", configs.MapEnv(map[string]string{"OPENAI_API_KEY": "k"}))
	if err != nil {
		t.Fatal(err)
	}
	b := newBuilder(time.Now, route.NewRegistry(route.Options{}), quota.New(quota.NewMemory(), quota.Options{}))
	rt, err := b.build(pol)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]int{"sk-aigw-emergency": int(quota.ClassEmergency), "sk-aigw-demo": 0} {
		p, err := rt.pipe.Auth.Authenticate([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		if p.Priority != want {
			t.Errorf("%s: priority %d, want %d", key, p.Priority, want)
		}
	}
	// Orgs with limits have a plan; the priority-mode API knows every org.
	if len(rt.quota.priorityDuration) != len(pol.Orgs) {
		t.Errorf("priority durations for %d of %d orgs", len(rt.quota.priorityDuration), len(pol.Orgs))
	}
}
