// <linux/kvm.h> for C++. The UAPI headers declare flexible arrays through
// __DECLARE_FLEX_ARRAY, which in C++ adds a one-byte empty struct: kvm_cpuid2 and kvm_msrs
// then grow to 12 bytes, their entries move to offset 12, and the ioctl numbers derived from
// their sizes change. Declaring the arrays the C way keeps the kernel's layout.
#pragma once

#include <linux/stddef.h>
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]
#include <linux/kvm.h>

#include <cstddef>

static_assert(sizeof(kvm_cpuid2) == 8 && offsetof(kvm_cpuid2, entries) == 8);
static_assert(sizeof(kvm_msrs) == 8 && offsetof(kvm_msrs, entries) == 8);
static_assert(KVM_GET_SUPPORTED_CPUID == 0xc008ae05);
