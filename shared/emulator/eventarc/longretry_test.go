package eventarc

import (
	"net/http"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"runwayjobs.dev/shared/emulator/clock"
)

// With production's delivery policy (10 s to 600 s backoff, dead letter after 20 attempts) a
// message that always fails is retried for about two hours of the clock, then dead-lettered:
// pstest's 10 minutes for an undelivered message do not cut it short, and one long jump of a
// manual clock stops at every retry.
func TestLongRetryReachesDeadLetter(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	e := newEnv(t, Options{Clock: clk})
	e.srv.SetTimeNowFunc(clk.Now) // as the emulator does
	ep := newEndpoint(t, always(http.StatusInternalServerError))
	topic := e.topic(t, "trigger")
	dead := e.topic(t, "trigger-dead")
	deadPull := e.subscribe(t, "trigger-dead-pull", dead, "", nil)
	e.subscribe(t, "trigger-sub", topic, ep.URL, func(s *pb.Subscription) {
		retryPolicy(10*time.Second, 600*time.Second)(s)
		s.DeadLetterPolicy = &pb.DeadLetterPolicy{DeadLetterTopic: dead, MaxDeliveryAttempts: 20}
	})
	e.start(t)
	e.publish(t, topic, []byte("poison"), nil)
	ep.wait(t, 1, 5*time.Second)
	time.Sleep(50 * time.Millisecond) // the first attempt settled: its retry is recorded
	// One jump, as `clock:advance {"duration":"2h25m"}` makes: it stops where each retry is
	// due. The 20th attempt is at 2h20m30s (10+20+…+320 s, then 13 × 600 s): 2h25m leaves the
	// dead letter 4.5 minutes old, which pstest still keeps for a pull subscription.
	clk.Advance(2*time.Hour + 25*time.Minute)
	time.Sleep(100 * time.Millisecond)
	if n := len(ep.requests()); n != 20 {
		t.Fatalf("%d delivery attempts in 2h25m of the clock, want 20", n)
	}
	got := e.pullOne(t, deadPull, 5*time.Second)
	if string(got.Message.Data) != "poison" {
		t.Fatalf("dead letter %q", got.Message.Data)
	}
}
