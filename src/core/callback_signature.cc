#include "core/callback_signature.h"
