package tun_test

import (
	"log"
	"sync"

	"github.com/tapwire/tapwire/tun"
)

// A multi-queue device with one goroutine per queue. The kernel keeps each
// flow on one queue.
func ExampleConfig_multiQueue() {
	dev, err := tun.Open(tun.Config{Name: "mq%d", Queues: 4})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()

	var wg sync.WaitGroup
	for _, q := range dev.Queues() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 65535)
			for {
				n, err := q.Read(buf)
				if err != nil {
					return // tun.ErrClosed once dev.Close is called
				}
				_ = buf[:n]
			}
		}()
	}
	wg.Wait()
}
