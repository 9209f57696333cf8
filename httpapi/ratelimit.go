package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/httprate"

	"github.com/callbus/callbus/callcore"
)

// rateLimiter returns the middleware that limits each caller (API key,
// else client IP) to rate requests per second on average with bursts of
// up to burst. httprate counts requests in a sliding window: burst
// requests per burst/rate seconds (at least one second, so that
// Retry-After, in whole seconds, is never 0). rate 0 disables the limit.
func rateLimiter(rate, burst int) func(http.Handler) http.Handler {
	if rate <= 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	burst = max(burst, rate)
	window := max(time.Duration(float64(burst)/float64(rate)*float64(time.Second)), time.Second)
	retry := strconv.Itoa(int((window + time.Second - 1) / time.Second))
	return httprate.NewRateLimiter(burst, window,
		httprate.WithKeyFuncs(func(r *http.Request) (string, error) { return caller(r), nil }),
		httprate.WithLimitHandler(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", retry)
			writeProblem(w, http.StatusTooManyRequests, callcore.CodeRateLimited,
				"too many requests: at most "+strconv.Itoa(rate)+" per second, "+strconv.Itoa(burst)+
					" at once; retry after "+retry+" s")
		}),
	).Handler
}
