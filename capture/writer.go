//go:build linux

package capture

import (
	"fmt"
	"io"
	"runtime"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Writer writes packets to a pcapng stream: a section header, one interface
// description (name, link type, filter) and an enhanced packet block per
// packet, with a nanosecond timestamp and, when known, the direction.
//
// Every WritePacket is flushed to the underlying writer, so that the stream
// is a complete pcapng file after each packet (and a reader at the other
// end of a pipe sees the packet at once). The caller closes the underlying
// writer.
type Writer struct {
	ng *pcapgo.NgWriter
}

// NewWriter writes the pcapng headers for one interface named name with link
// type lt (layers.LinkTypeRaw, layers.LinkTypeEthernet, ...) to w. filter,
// if not empty, is recorded as the interface's capture filter.
func NewWriter(w io.Writer, name string, lt layers.LinkType, filter string) (*Writer, error) {
	ng, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{
		Name:     name,
		OS:       runtime.GOOS,
		LinkType: lt,
		Filter:   filter,
	}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware:    runtime.GOARCH,
		OS:          runtime.GOOS,
		Application: "tapwire capture",
	}})
	if err != nil {
		return nil, fmt.Errorf("capture: write pcapng header: %w", err)
	}
	if err := ng.Flush(); err != nil {
		return nil, fmt.Errorf("capture: write pcapng header: %w", err)
	}
	return &Writer{ng: ng}, nil
}

// WritePacket appends p and flushes it to the underlying writer.
func (w *Writer) WritePacket(p Packet) error {
	var opts pcapgo.NgPacketOptions
	switch p.Direction {
	case DirIn:
		opts.Flags = &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound}
	case DirOut:
		opts.Flags = &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionOutbound}
	}
	if err := w.ng.WritePacketWithOptions(p.CaptureInfo(), p.Data, opts); err != nil {
		return fmt.Errorf("capture: write packet: %w", err)
	}
	return w.Flush()
}

// Flush writes out anything buffered.
func (w *Writer) Flush() error {
	if err := w.ng.Flush(); err != nil {
		return fmt.Errorf("capture: write pcapng: %w", err)
	}
	return nil
}
