#!/usr/bin/env bash
# `make run`: the main job, end to end, saying what it does.  Runs the
# walkthroughs in examples/ in order, with object names unique to this run.
set -eu
build=$1
ex=$build/examples
tag="run$$"
step() { echo; echo "=== $*"; }

if [ -x "$ex/shm_hello" ]; then
  step "1. shared memory object: create, resize, map, write, read back, remove"
  "$ex/shm_hello" "$tag.hello"
fi
if [ -x "$ex/shm_parent_child" ]; then
  step "2. parent fills 1000 bytes with 1s, a child opens read-only and checks them"
  "$ex/shm_parent_child" "$tag.pc"
fi
if [ -x "$ex/shm_writer" ] && [ -x "$ex/shm_reader" ]; then
  step "3. a writer program leaves a message, a reader program prints it and removes the object"
  "$ex/shm_writer" "$tag.msg"
  "$ex/shm_reader" "$tag.msg"
fi
if [ -x "$ex/offset_list" ]; then
  step "4. a linked list of offset pointers walked by a child mapped at another address"
  "$ex/offset_list" "$tag.list"
fi
if [ -x "$ex/managed_alloc" ]; then
  step "5. a managed segment: the parent allocates a block, a child finds it by handle, prints and frees it"
  "$ex/managed_alloc" "$tag.alloc"
fi
if [ -x "$ex/managed_named" ]; then
  step "6. named objects: the parent constructs three, a child finds them with their counts and destroys them"
  "$ex/managed_named" "$tag.named"
fi
if [ -x "$ex/managed_mutex" ]; then
  step "7. a counter and its mutex found-or-constructed in a segment, incremented by parent and child at once"
  "$ex/managed_mutex" "$tag.mutex"
fi
if [ -x "$ex/managed_sort" ]; then
  step "8. an array of 100 ints constructed by name, sorted in reverse by a child"
  "$ex/managed_sort" "$tag.sort"
fi
echo
echo "make run: done"
