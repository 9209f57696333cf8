// Package benchpeer holds the baselines that callbus's load scripts
// measure it against, in the same run: programs built on the same
// libraries doing the least that the protocol allows.
package benchpeer
