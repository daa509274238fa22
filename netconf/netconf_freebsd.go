package netconf

import "golang.org/x/sys/unix"

// FreeBSD's requests. golang.org/x/sys/unix's SIOCAIFADDR is the one of
// FreeBSD 9, whose ifaliasreq had no ifra_vhid.
const (
	goos         = "freebsd"
	siocAIFADDR  = 0x8044692b // _IOW('i', 43, struct ifaliasreq)
	siocAIFADDR6 = 0x8088691b // _IOW('i', 27, struct in6_aliasreq)
	siocDIFADDR6 = 0x81206919 // _IOW('i', 25, struct in6_ifreq)
	rtfIfscope   = 0          // FreeBSD has no scoped routes
)

func layout() bsdLayout { return freebsdLayout() }

// socket opens a socket that is closed on exec.
func socket(domain, typ, proto int) (int, error) {
	return unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
}
