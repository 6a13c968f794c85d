// Package cluster lets several identical Skywatch nodes share one Redis for
// coordination: a registry of live nodes kept by a heartbeat, leases with a
// fencing token for work that must run on one node at a time (the incident
// engine), and camera claims so that each camera is pulled by one node.
//
// Nothing here is consensus of our own: every decision is one atomic Redis
// command or Lua script, and a lease is only as safe as the writes it
// fences. A lease holder that cannot renew its lease in time stops (its
// context is cancelled) one renew interval before the lease could expire in
// Redis, and every write it makes is checked against the lease's value in
// the same script (see Fence), so a holder that was paused or cut off cannot
// write after another node took over.
//
// Keys live under the store's key prefix:
//
//	{prefix}cluster:node:{id}           NodeInfo JSON, TTL = failover
//	{prefix}cluster:nodes               zset of node ids (score: last heartbeat, ms)
//	{prefix}cluster:lease:{name}        "{node}/{token}", TTL = failover
//	{prefix}cluster:lease:{name}:token  the lease's token counter (INCR)
//	{prefix}cluster:camera:{id}         the node that pulls the camera, TTL = failover
package cluster
