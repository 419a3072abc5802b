// Package ports hands out 127.0.0.1 ports to the nodes that tests and
// parley-bench start, so that no two of them are ever given the same port:
// not two goroutines of one process, and not two processes (go test runs
// the packages' test binaries in parallel).
//
// Picking a port by binding port 0, closing it and handing the number on
// races: the kernel may give the same number to anyone else in between.
// Instead each process claims whole blocks of ports, below the kernel's
// ephemeral range (so no outgoing connection is ever given one of them),
// by holding an exclusive lock on a file named for the block. The kernel
// drops the lock when the process ends, however it ends, so a block is
// never claimed twice while its owner lives and is free again after.
// Inside its blocks a process hands each port out once.
package ports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// BlockSize is how many consecutive ports one claim takes.
const BlockSize = 100

// lowest is the first port of the first block.
const lowest = 10000

var (
	mu      sync.Mutex
	current []int      // ports of the claimed blocks not handed out yet
	locks   []*os.File // held open for the life of the process: the claims

	// firstBlock picks the block a claim tries first (of n).
	firstBlock = rand.IntN
)

// Free returns a 127.0.0.1 address no other caller of Free, in this process
// or another, has been given or will be given while this process runs, and
// that was free for both TCP and UDP when asked (memberlist needs both).
func Free() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	for range 3 * BlockSize {
		if len(current) == 0 {
			if err := claimBlock(); err != nil {
				return "", err
			}
		}
		port := current[0]
		current = current[1:]
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if bindable(addr) {
			return addr, nil
		}
	}
	return "", errors.New("ports: no port free for both TCP and UDP in the claimed blocks")
}

// bindable reports whether addr can be bound for TCP and for UDP now:
// something outside Parley may hold a port of a claimed block.
func bindable(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = l.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	_ = pc.Close()
	return true
}

// claimBlock locks the file of a block no live process holds, starting at
// a random block so that processes rarely try the same one first.
func claimBlock() error {
	dir := filepath.Join(os.TempDir(), "parley-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("ports: %w", err)
	}
	blocks := (ephemeralStart() - lowest) / BlockSize
	if blocks < 1 {
		return errors.New("ports: no room below the ephemeral range")
	}
	first := firstBlock(blocks)
	for i := range blocks {
		base := lowest + ((first+i)%blocks)*BlockSize
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(base)+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close()
			continue
		}
		locks = append(locks, f)
		for p := base; p < base+BlockSize; p++ {
			current = append(current, p)
		}
		return nil
	}
	return errors.New("ports: every block is claimed by a running process")
}

// ephemeralStart is the first port the kernel hands to outgoing
// connections (Linux's ip_local_port_range; 32768 elsewhere).
func ephemeralStart() int {
	var low, high int
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if _, err := fmt.Sscan(string(b), &low, &high); err == nil && low > lowest+BlockSize {
			return low
		}
	}
	return 32768
}
