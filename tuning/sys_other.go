//go:build !linux

package tuning

import "errors"

// errNotLinux is returned by every Sys call off Linux: ringbroker is a
// Linux broker and these facts only exist there; fixture tests supply
// their own Sys and still run everywhere.
var errNotLinux = errors.New("tuning: host checks need Linux")

type otherSys struct{}

func defaultSys() Sys { return otherSys{} }

func (otherSys) Statfs(string) (FSStats, error)         { return FSStats{}, errNotLinux }
func (otherSys) Writable(string) error                  { return errNotLinux }
func (otherSys) Rlimit(Resource) (Rlimit, error)        { return Rlimit{}, errNotLinux }
func (otherSys) NetInterfaces() ([]NetInterface, error) { return nil, errNotLinux }
func (otherSys) Ethtool(string, uint32) (uint32, error) { return 0, errNotLinux }
func (otherSys) ProbeIOURing() IOURingProbe {
	return IOURingProbe{SetupErr: errNotLinux, FlagsErr: errNotLinux, ProbeErr: errNotLinux}
}
func (otherSys) SetUpRings(RingPlan) error  { return errNotLinux }
func (otherSys) ClockSynced() (bool, error) { return false, errNotLinux }
func (otherSys) UsableCPUs() (int, error)   { return 0, errNotLinux }
func (otherSys) KernelTLS() error           { return errNotLinux }
