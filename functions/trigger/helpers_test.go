package trigger

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

// serve starts the functions framework on a free loopback port, as the Cloud Functions runtime
// would with FUNCTION_TARGET set, and returns its URL. The framework has no shutdown: the
// server lives until the test binary exits.
func serve(t *testing.T) string {
	t.Helper()
	t.Setenv("FUNCTION_TARGET", FunctionName)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	go funcframework.StartHostPort("127.0.0.1", fmt.Sprint(addr.Port))
	url := fmt.Sprintf("http://%s/", addr)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr.String()); err == nil {
			c.Close()
			return url
		}
	}
	t.Fatalf("functions framework did not listen on %s", addr)
	return ""
}
