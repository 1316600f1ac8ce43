// Package controller is the active controller of issue 15 as an I/O-free
// state machine: its inputs are requests (broker registration, heartbeats,
// the admin requests brokers forward), clock readings and the current
// metadata.Image; its outputs are the metadata records to propose and the
// answers to send. The raft leader runs it; nothing here touches a file, a
// socket or a goroutine, and its tests are datadriven scripts.
package controller
