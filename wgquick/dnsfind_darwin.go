package wgquick

import (
	"fmt"
	"os/exec"
)

// findDNSTool finds networksetup, which sets DNS on macOS's network
// services as wg-quick does there.
func findDNSTool() (DNSTool, error) {
	p, err := exec.LookPath("networksetup")
	if err != nil {
		return DNSTool{}, fmt.Errorf("networksetup is not in $PATH (it is /usr/sbin/networksetup on macOS): remove DNS and set it in a PostUp hook")
	}
	return DNSTool{Networksetup, p}, nil
}

// readDNSServices lists the enabled network services and the DNS servers
// and search domains each has now, for down to give them back.
func readDNSServices(t DNSTool) []DNSService {
	out, err := exec.Command(t.Path, "-listallnetworkservices").Output()
	if err != nil {
		return nil
	}
	var services []DNSService
	for _, name := range ParseNetworkServices(string(out)) {
		svc := DNSService{Name: name}
		if out, err := exec.Command(t.Path, "-getdnsservers", name).Output(); err == nil {
			svc.Servers = ParseNetworksetupList(string(out))
		}
		if out, err := exec.Command(t.Path, "-getsearchdomains", name).Output(); err == nil {
			svc.Search = ParseNetworksetupList(string(out))
		}
		services = append(services, svc)
	}
	return services
}
