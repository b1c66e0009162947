# guest/: the host library holds guest/init/kinit.c (pure, unit-tested) and
# the image builder; guest/init/main.c is the static guest binary's main()
# and is linked by guest/init/module.mk, not archived.
# `override`: vmm/module.mk (included later) still carries an older
# assignment that excluded all of guest/init/; this one must win.
override guest_EXCLUDE := guest/init/main.c
