/*
 * fake_v4l2: a V4L2 capture device in a preload library, for testing a
 * camera application's real V4L2 code (nokhwa's, ffmpeg's) on a machine
 * without a camera or kernel modules.
 *
 * Why not PipeWire's V4L2 layer (pw-v4l2)? Tried first, with Debian 12's
 * pipewire-v4l2 0.3.65 in front of a private PipeWire + WirePlumber and a
 * GStreamer source: ffmpeg captures through it, but it answers
 * VIDIOC_ENUM_FRAMEINTERVALS with ENOTTY, and VIDIOC_G_FMT / G_PARM with
 * 0x0 and 0/0, so nokhwa (which builds its modes from the intervals) lists
 * the camera with no mode at all; and ffmpeg once crashed (SIGSEGV) when
 * the source went away mid-stream. See tests/it/camera_device.rs.
 *
 * What it is: LD_PRELOAD=libfakev4l2.so intercepts open/openat (and their
 * 64-bit and fortified forms), close, ioctl, mmap, poll and read for one
 * device path. Everything else goes to libc. The device offers discrete
 * modes, each played from a file of frames in that format:
 *
 *   FAKE_V4L2_DEVICE  the path it answers (default /dev/video0)
 *   FAKE_V4L2_CARD    the card name VIDIOC_QUERYCAP reports
 *   FAKE_V4L2_MODES   FOURCC:WxH:FPS:FILE[,FOURCC:WxH:FPS:FILE...]
 *                     FOURCC is YUYV (FILE holds raw frames back to back)
 *                     or MJPG (FILE holds JPEGs back to back, SOI..EOI).
 *
 * Behaviour mirrors a UVC webcam (drivers/media/usb/uvc) where it matters:
 *  - the device path must exist for the device to exist: the test lists it
 *    in a private mount namespace (what applications enumerate), and
 *    removing the path is unplugging the camera: from then on every ioctl
 *    on an open descriptor fails with ENODEV and poll() reports
 *    POLLERR|POLLHUP, as uvcvideo does after a disconnect; open() fails
 *    with ENOENT until the path is back;
 *  - S_FMT, S_PARM and REQBUFS while streaming fail with EBUSY; only one
 *    descriptor may own buffers at a time (others get EBUSY);
 *  - frames come on the device's own clock: frame k of a stream is due
 *    k/fps after STREAMON and fills the oldest queued buffer; with no
 *    buffer queued it is dropped (a gap in `sequence`), as a real driver
 *    drops frames an application is too slow to take;
 *  - which picture frame k shows follows the wall clock of the process
 *    (the file plays from the process's first STREAMON and loops), so a
 *    camera reopened later shows a later picture, like a live scene;
 *  - DQBUF blocks on a blocking descriptor, EAGAIN on O_NONBLOCK;
 *    timestamps are CLOCK_MONOTONIC (V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC).
 *
 * Build: cc -shared -fPIC -O2 -o libfakev4l2.so fake_v4l2.c -ldl -lpthread
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_MODES 16
#define MAX_FDS 16
#define MAX_BUFFERS 32 /* uvcvideo's UVC_MAX_VIDEO_BUFFERS */
#define MAX_FRAMES 100000

struct mode {
    uint32_t fourcc, width, height, fps;
    char path[4096];
    /* Loaded on first use: the file mapped, and where each frame lies. */
    const uint8_t *data;
    size_t data_len;
    size_t *offsets, *lengths;
    size_t frames;
};

struct buffer {
    size_t offset;      /* in the memfd, and the mmap offset QUERYBUF gives */
    uint32_t bytesused;
    uint32_t sequence;
    struct timeval timestamp;
    int queued, done;   /* queued: waiting for a frame; done: filled, waiting for DQBUF */
    uint64_t order;     /* FIFO order of QBUF (queued) or of filling (done) */
};

struct fake {
    int fd;             /* a real descriptor (an eventfd) standing for the device */
    int nonblock;
    int mode;           /* index into modes: the current format */
    int fps;            /* the current frame rate (S_PARM) */
    int owner;          /* this descriptor owns the buffers */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int configured;
static int debug; /* FAKE_V4L2_DEBUG=1: every ioctl on stderr */
static char device_path[4096] = "/dev/video0";
static char card[32] = "Fake V4L2 Camera";
static struct mode modes[MAX_MODES];
static int mode_count;
static struct fake fakes[MAX_FDS];
static int fake_count;

/* The buffers and the stream: one owner at a time, as in a real driver. */
static struct buffer buffers[MAX_BUFFERS];
static int buffer_count;
static size_t buffer_size;
static int memfd = -1;
static uint8_t *memory; /* the memfd mapped for writing frames */
static int streaming;
static struct timespec stream_start;
static uint64_t next_frame;   /* index of the next frame due on the stream */
static uint32_t sequence;
static uint64_t fifo;
static int have_epoch;
static struct timespec epoch; /* the picture clock: the process's first STREAMON */

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);
static int (*real_poll)(struct pollfd *, nfds_t, int);
static ssize_t (*real_read)(int, void *, size_t);
static long (*real_syscall)(long, ...);

static void resolve(void)
{
    if (real_open)
        return;
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_close = dlsym(RTLD_NEXT, "close");
    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_mmap = dlsym(RTLD_NEXT, "mmap");
    real_mmap64 = dlsym(RTLD_NEXT, "mmap64");
    real_poll = dlsym(RTLD_NEXT, "poll");
    real_read = dlsym(RTLD_NEXT, "read");
    real_syscall = dlsym(RTLD_NEXT, "syscall");
}

static uint32_t fourcc_of(const char *s)
{
    return v4l2_fourcc(s[0], s[1], s[2], s[3]);
}

/* Reads the environment once. Malformed modes are skipped with a message. */
static void configure(void)
{
    if (configured)
        return;
    configured = 1;
    debug = getenv("FAKE_V4L2_DEBUG") != NULL;
    const char *dev = getenv("FAKE_V4L2_DEVICE");
    if (dev && *dev)
        snprintf(device_path, sizeof device_path, "%s", dev);
    const char *name = getenv("FAKE_V4L2_CARD");
    if (name && *name)
        snprintf(card, sizeof card, "%s", name);
    const char *spec = getenv("FAKE_V4L2_MODES");
    if (!spec)
        return;
    char *copy = strdup(spec), *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && mode_count < MAX_MODES; item = strtok_r(NULL, ",", &save)) {
        struct mode *m = &modes[mode_count];
        char fcc[5] = {0};
        int used = 0;
        if (sscanf(item, "%4[A-Z0-9]:%ux%u:%u:%n", fcc, &m->width, &m->height, &m->fps, &used) != 4 || !used
            || strlen(fcc) != 4 || !m->width || !m->height || !m->fps) {
            fprintf(stderr, "fake_v4l2: ignoring mode '%s' (FOURCC:WxH:FPS:FILE)\n", item);
            continue;
        }
        m->fourcc = fourcc_of(fcc);
        if (m->fourcc != V4L2_PIX_FMT_YUYV && m->fourcc != V4L2_PIX_FMT_MJPEG) {
            fprintf(stderr, "fake_v4l2: ignoring mode '%s': only YUYV and MJPG\n", item);
            continue;
        }
        snprintf(m->path, sizeof m->path, "%s", item + used);
        mode_count++;
    }
    free(copy);
}

static int present(void)
{
    struct stat st;
    return stat(device_path, &st) == 0;
}

static size_t frame_size(const struct mode *m)
{
    return (size_t)m->width * m->height * 2; /* YUYV; MJPEG's upper bound, as uvcvideo reports */
}

/* Maps the mode's file and indexes its frames; 0 on success. */
static int load(struct mode *m)
{
    if (m->frames)
        return 0;
    resolve();
    int fd = real_open(m->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "fake_v4l2: cannot open %s: %s\n", m->path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) || st.st_size <= 0) {
        real_close(fd);
        return -1;
    }
    void *p = real_mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    real_close(fd);
    if (p == MAP_FAILED)
        return -1;
    m->data = p;
    m->data_len = (size_t)st.st_size;
    m->offsets = calloc(MAX_FRAMES, sizeof(size_t));
    m->lengths = calloc(MAX_FRAMES, sizeof(size_t));
    if (m->fourcc == V4L2_PIX_FMT_YUYV) {
        size_t n = m->data_len / frame_size(m);
        for (size_t i = 0; i < n && i < MAX_FRAMES; i++) {
            m->offsets[i] = i * frame_size(m);
            m->lengths[i] = frame_size(m);
            m->frames++;
        }
    } else {
        /* JPEGs back to back: each runs from FF D8 to the first FF D9
         * (entropy-coded data never holds FF D9: a data FF is stuffed). */
        size_t i = 0;
        while (i + 4 <= m->data_len && m->frames < MAX_FRAMES) {
            if (m->data[i] != 0xFF || m->data[i + 1] != 0xD8)
                break;
            size_t j = i + 2;
            while (j + 1 < m->data_len && !(m->data[j] == 0xFF && m->data[j + 1] == 0xD9))
                j++;
            if (j + 1 >= m->data_len)
                break;
            m->offsets[m->frames] = i;
            m->lengths[m->frames] = j + 2 - i;
            if (m->lengths[m->frames] <= frame_size(m))
                m->frames++;
            i = j + 2;
        }
    }
    if (!m->frames) {
        fprintf(stderr, "fake_v4l2: no %s frame in %s\n", m->fourcc == V4L2_PIX_FMT_YUYV ? "YUYV" : "JPEG", m->path);
        return -1;
    }
    return 0;
}

static struct fake *find(int fd)
{
    for (int i = 0; i < fake_count; i++)
        if (fakes[i].fd == fd)
            return &fakes[i];
    return NULL;
}

static int is_device(const char *path)
{
    configure();
    return path && strcmp(path, device_path) == 0;
}

static int open_device(int flags)
{
    resolve();
    pthread_mutex_lock(&lock);
    if (!present()) {
        pthread_mutex_unlock(&lock);
        errno = ENOENT;
        return -1;
    }
    if (fake_count == MAX_FDS || mode_count == 0) {
        pthread_mutex_unlock(&lock);
        errno = mode_count ? EMFILE : ENODEV;
        return -1;
    }
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd >= 0) {
        struct fake *f = &fakes[fake_count++];
        memset(f, 0, sizeof *f);
        f->fd = fd;
        f->nonblock = (flags & O_NONBLOCK) != 0;
        /* The device keeps its format across opens (a driver's state). */
        f->mode = 0;
        for (int i = 0; i < fake_count - 1; i++)
            if (fakes[i].owner)
                f->mode = fakes[i].mode;
        f->fps = (int)modes[f->mode].fps;
    }
    pthread_mutex_unlock(&lock);
    return fd;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static double ts_s(const struct timespec *t)
{
    return (double)t->tv_sec + t->tv_nsec / 1e9;
}

static void free_buffers(void)
{
    if (memory)
        munmap(memory, buffer_size * (size_t)buffer_count);
    if (memfd >= 0)
        real_close(memfd);
    memory = NULL;
    memfd = -1;
    buffer_count = 0;
    buffer_size = 0;
    streaming = 0;
    for (int i = 0; i < fake_count; i++)
        fakes[i].owner = 0;
}

/* Fills queued buffers with every frame due by now (oldest buffer first);
 * a frame with no buffer queued is dropped. Returns the time the next
 * frame is due. Called with the lock held, while streaming. */
static double advance(struct fake *f)
{
    struct mode *m = &modes[f->mode];
    double period = 1.0 / f->fps, start = ts_s(&stream_start), now = now_s();
    while (start + next_frame * period <= now) {
        double due = start + next_frame * period;
        int pick = -1;
        for (int i = 0; i < buffer_count; i++)
            if (buffers[i].queued && (pick < 0 || buffers[i].order < buffers[pick].order))
                pick = i;
        if (pick >= 0) {
            /* The picture on the process's clock, looping through the file. */
            uint64_t shown = (uint64_t)((due - ts_s(&epoch)) * f->fps + 1e-6) % m->frames;
            struct buffer *b = &buffers[pick];
            memcpy(memory + b->offset, m->data + m->offsets[shown], m->lengths[shown]);
            b->bytesused = (uint32_t)m->lengths[shown];
            b->sequence = sequence;
            b->timestamp.tv_sec = (time_t)due;
            b->timestamp.tv_usec = (suseconds_t)((due - (double)(time_t)due) * 1e6);
            b->queued = 0;
            b->done = 1;
            b->order = fifo++;
        }
        sequence++;
        next_frame++;
    }
    return start + next_frame * period;
}

static int oldest_done(void)
{
    int pick = -1;
    for (int i = 0; i < buffer_count; i++)
        if (buffers[i].done && (pick < 0 || buffers[i].order < buffers[pick].order))
            pick = i;
    return pick;
}

static void sleep_until(double t)
{
    double d = t - now_s();
    if (d <= 0)
        return;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    nanosleep(&ts, NULL);
}

static void fill_pix(struct v4l2_pix_format *p, const struct mode *m)
{
    memset(p, 0, sizeof *p);
    p->width = m->width;
    p->height = m->height;
    p->pixelformat = m->fourcc;
    p->field = V4L2_FIELD_NONE;
    p->bytesperline = m->fourcc == V4L2_PIX_FMT_YUYV ? m->width * 2 : 0;
    p->sizeimage = (uint32_t)frame_size(m);
    p->colorspace = m->fourcc == V4L2_PIX_FMT_MJPEG ? V4L2_COLORSPACE_JPEG : V4L2_COLORSPACE_SRGB;
}

/* The mode of `fourcc` closest in size to w x h (V4L2 drivers adjust, never refuse). */
static int nearest_mode(uint32_t fourcc, uint32_t w, uint32_t h, int fallback)
{
    int best = -1;
    long best_d = 0;
    for (int i = 0; i < mode_count; i++) {
        if (modes[i].fourcc != fourcc)
            continue;
        long d = labs((long)modes[i].width - (long)w) + labs((long)modes[i].height - (long)h);
        if (best < 0 || d < best_d) {
            best = i;
            best_d = d;
        }
    }
    return best < 0 ? fallback : best;
}

static void fill_buffer(struct v4l2_buffer *out, int i)
{
    uint32_t type = out->type, memory_type = out->memory;
    memset(out, 0, sizeof *out);
    out->index = (uint32_t)i;
    out->type = type;
    out->memory = memory_type;
    out->length = (uint32_t)buffer_size;
    out->m.offset = (uint32_t)buffers[i].offset;
    out->field = V4L2_FIELD_NONE;
    out->flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC | V4L2_BUF_FLAG_TSTAMP_SRC_SOE;
    if (buffers[i].queued)
        out->flags |= V4L2_BUF_FLAG_QUEUED;
    if (buffers[i].done)
        out->flags |= V4L2_BUF_FLAG_DONE;
    out->bytesused = buffers[i].bytesused;
    out->sequence = buffers[i].sequence;
    out->timestamp = buffers[i].timestamp;
}

static int fail(int e)
{
    errno = e;
    return -1;
}

/* One ioctl on a fake descriptor; called with the lock held. */
static int fake_ioctl(struct fake *f, unsigned long request, void *arg)
{
    if (!present())
        return fail(ENODEV);
    switch (request) {
    case VIDIOC_QUERYCAP: {
        struct v4l2_capability *c = arg;
        memset(c, 0, sizeof *c);
        snprintf((char *)c->driver, sizeof c->driver, "fake_v4l2");
        snprintf((char *)c->card, sizeof c->card, "%s", card);
        snprintf((char *)c->bus_info, sizeof c->bus_info, "platform:fake-v4l2");
        c->version = (6u << 16) | (1u << 8);
        c->device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
        c->capabilities = c->device_caps | V4L2_CAP_DEVICE_CAPS;
        return 0;
    }
    case VIDIOC_ENUM_FMT: {
        struct v4l2_fmtdesc *d = arg;
        if (d->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
            return fail(EINVAL);
        uint32_t seen[MAX_MODES];
        uint32_t n = 0;
        for (int i = 0; i < mode_count; i++) {
            int dup = 0;
            for (uint32_t j = 0; j < n; j++)
                dup |= seen[j] == modes[i].fourcc;
            if (dup)
                continue;
            if (n == d->index) {
                uint32_t index = d->index, type = d->type;
                memset(d, 0, sizeof *d);
                d->index = index;
                d->type = type;
                d->pixelformat = modes[i].fourcc;
                d->flags = modes[i].fourcc == V4L2_PIX_FMT_MJPEG ? V4L2_FMT_FLAG_COMPRESSED : 0;
                snprintf((char *)d->description, sizeof d->description, "%s",
                         modes[i].fourcc == V4L2_PIX_FMT_MJPEG ? "Motion-JPEG" : "YUYV 4:2:2");
                return 0;
            }
            seen[n++] = modes[i].fourcc;
        }
        return fail(EINVAL);
    }
    case VIDIOC_ENUM_FRAMESIZES: {
        struct v4l2_frmsizeenum *s = arg;
        uint32_t n = 0;
        for (int i = 0; i < mode_count; i++) {
            if (modes[i].fourcc != s->pixel_format)
                continue;
            int dup = 0;
            for (int j = 0; j < i; j++)
                dup |= modes[j].fourcc == s->pixel_format && modes[j].width == modes[i].width && modes[j].height == modes[i].height;
            if (dup)
                continue;
            if (n++ == s->index) {
                s->type = V4L2_FRMSIZE_TYPE_DISCRETE;
                s->discrete.width = modes[i].width;
                s->discrete.height = modes[i].height;
                return 0;
            }
        }
        return fail(EINVAL);
    }
    case VIDIOC_ENUM_FRAMEINTERVALS: {
        struct v4l2_frmivalenum *v = arg;
        uint32_t n = 0;
        for (int i = 0; i < mode_count; i++) {
            if (modes[i].fourcc != v->pixel_format || modes[i].width != v->width || modes[i].height != v->height)
                continue;
            if (n++ == v->index) {
                v->type = V4L2_FRMIVAL_TYPE_DISCRETE;
                v->discrete.numerator = 1;
                v->discrete.denominator = modes[i].fps;
                return 0;
            }
        }
        return fail(EINVAL);
    }
    case VIDIOC_G_FMT:
    case VIDIOC_S_FMT:
    case VIDIOC_TRY_FMT: {
        struct v4l2_format *fmt = arg;
        if (fmt->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
            return fail(EINVAL);
        int m = f->mode;
        if (request != VIDIOC_G_FMT) {
            m = nearest_mode(fmt->fmt.pix.pixelformat, fmt->fmt.pix.width, fmt->fmt.pix.height, -1);
            if (m < 0) /* an unknown format: the driver picks its own */
                m = nearest_mode(modes[f->mode].fourcc, fmt->fmt.pix.width, fmt->fmt.pix.height, f->mode);
        }
        if (request == VIDIOC_S_FMT) {
            if (buffer_count && (streaming || !f->owner))
                return fail(EBUSY);
            for (int i = 0; i < fake_count; i++)
                fakes[i].mode = m;
            f->fps = (int)modes[m].fps;
        }
        fill_pix(&fmt->fmt.pix, &modes[m]);
        return 0;
    }
    case VIDIOC_G_PARM:
    case VIDIOC_S_PARM: {
        struct v4l2_streamparm *p = arg;
        if (p->type != V4L2_BUF_TYPE_VIDEO_CAPTURE)
            return fail(EINVAL);
        if (request == VIDIOC_S_PARM) {
            if (streaming)
                return fail(EBUSY);
            struct v4l2_fract want = p->parm.capture.timeperframe;
            double fps = want.numerator ? (double)want.denominator / want.numerator : modes[f->mode].fps;
            /* The nearest rate of the current size and format. */
            const struct mode *cur = &modes[f->mode];
            int best = f->mode;
            for (int i = 0; i < mode_count; i++)
                if (modes[i].fourcc == cur->fourcc && modes[i].width == cur->width && modes[i].height == cur->height
                    && (double)labs((long)modes[i].fps - (long)fps) < (double)labs((long)modes[best].fps - (long)fps))
                    best = i;
            for (int i = 0; i < fake_count; i++)
                fakes[i].mode = best;
            f->fps = (int)modes[best].fps;
        }
        memset(&p->parm, 0, sizeof p->parm);
        p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
        p->parm.capture.timeperframe.numerator = 1;
        p->parm.capture.timeperframe.denominator = (uint32_t)f->fps;
        p->parm.capture.readbuffers = 0;
        return 0;
    }
    case VIDIOC_ENUMINPUT: {
        struct v4l2_input *in = arg;
        if (in->index != 0)
            return fail(EINVAL);
        memset(in, 0, sizeof *in);
        snprintf((char *)in->name, sizeof in->name, "Camera 1");
        in->type = V4L2_INPUT_TYPE_CAMERA;
        return 0;
    }
    case VIDIOC_G_INPUT:
        *(int *)arg = 0;
        return 0;
    case VIDIOC_S_INPUT:
        return *(int *)arg == 0 ? 0 : fail(EINVAL);
    case VIDIOC_REQBUFS: {
        struct v4l2_requestbuffers *r = arg;
        if (r->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || r->memory != V4L2_MEMORY_MMAP)
            return fail(EINVAL);
        if (buffer_count && !f->owner)
            return fail(EBUSY);
        if (streaming)
            return fail(EBUSY);
        free_buffers();
        if (r->count == 0)
            return 0;
        if (load(&modes[f->mode]))
            return fail(EIO);
        uint32_t count = r->count > MAX_BUFFERS ? MAX_BUFFERS : r->count;
        long page = sysconf(_SC_PAGESIZE);
        buffer_size = (frame_size(&modes[f->mode]) + (size_t)page - 1) / (size_t)page * (size_t)page;
        memfd = memfd_create("fake_v4l2", MFD_CLOEXEC);
        if (memfd < 0 || ftruncate(memfd, (off_t)(buffer_size * count)))
            return fail(ENOMEM);
        memory = real_mmap(NULL, buffer_size * count, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        if (memory == MAP_FAILED) {
            memory = NULL;
            free_buffers();
            return fail(ENOMEM);
        }
        buffer_count = (int)count;
        for (int i = 0; i < buffer_count; i++) {
            memset(&buffers[i], 0, sizeof buffers[i]);
            buffers[i].offset = (size_t)i * buffer_size;
        }
        f->owner = 1;
        r->count = count;
        return 0;
    }
    case VIDIOC_QUERYBUF:
    case VIDIOC_QBUF: {
        struct v4l2_buffer *b = arg;
        if (!f->owner)
            return fail(EBUSY);
        if (b->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || b->memory != V4L2_MEMORY_MMAP || b->index >= (uint32_t)buffer_count)
            return fail(EINVAL);
        if (request == VIDIOC_QBUF) {
            struct buffer *q = &buffers[b->index];
            if (q->queued || q->done)
                return fail(EINVAL);
            q->queued = 1;
            q->order = fifo++;
        }
        fill_buffer(b, (int)b->index);
        return 0;
    }
    case VIDIOC_DQBUF: {
        struct v4l2_buffer *b = arg;
        if (!f->owner || !streaming)
            return fail(EINVAL);
        for (;;) {
            double due = advance(f);
            int i = oldest_done();
            if (i >= 0) {
                buffers[i].done = 0;
                fill_buffer(b, i);
                return 0;
            }
            if (f->nonblock)
                return fail(EAGAIN);
            int any_queued = 0;
            for (int k = 0; k < buffer_count; k++)
                any_queued |= buffers[k].queued;
            if (!any_queued) /* would wait forever; uvcvideo blocks, we refuse */
                return fail(EINVAL);
            pthread_mutex_unlock(&lock);
            sleep_until(due);
            pthread_mutex_lock(&lock);
            if (!present())
                return fail(ENODEV);
            if (!streaming || !f->owner)
                return fail(EINVAL);
        }
    }
    case VIDIOC_STREAMON:
        if (!f->owner)
            return fail(EBUSY);
        if (!streaming) {
            streaming = 1;
            clock_gettime(CLOCK_MONOTONIC, &stream_start);
            if (!have_epoch) {
                epoch = stream_start;
                have_epoch = 1;
            }
            next_frame = 0;
            sequence = 0;
        }
        return 0;
    case VIDIOC_STREAMOFF:
        if (!f->owner)
            return fail(EBUSY);
        streaming = 0;
        for (int i = 0; i < buffer_count; i++)
            buffers[i].queued = buffers[i].done = 0;
        return 0;
    default:
        /* No controls, standards, crop or selection: what a minimal UVC
         * camera without controls answers. */
        return fail(request == VIDIOC_QUERYCTRL || request == VIDIOC_QUERY_EXT_CTRL || request == VIDIOC_G_CTRL ? EINVAL : ENOTTY);
    }
}

/* ---- the intercepted libc entry points ---- */

static int open_common(int (*real)(const char *, int, ...), const char *path, int flags, va_list ap)
{
    resolve();
    if (is_device(path))
        return open_device(flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    return real(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    resolve();
    int r = open_common(real_open, path, flags, ap);
    va_end(ap);
    return r;
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    resolve();
    int r = open_common(real_open64 ? real_open64 : real_open, path, flags, ap);
    va_end(ap);
    return r;
}

int __open_2(const char *path, int flags)
{
    resolve();
    return is_device(path) ? open_device(flags) : real_open(path, flags);
}

int __open64_2(const char *path, int flags)
{
    resolve();
    return is_device(path) ? open_device(flags) : real_open64(path, flags);
}

static int openat_common(int (*real)(int, const char *, int, ...), int dirfd, const char *path, int flags, va_list ap)
{
    resolve();
    if (is_device(path))
        return open_device(flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    return real(dirfd, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int r = openat_common((resolve(), real_openat), dirfd, path, flags, ap);
    va_end(ap);
    return r;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    resolve();
    int r = openat_common(real_openat64 ? real_openat64 : real_openat, dirfd, path, flags, ap);
    va_end(ap);
    return r;
}

int close(int fd)
{
    resolve();
    pthread_mutex_lock(&lock);
    struct fake *f = find(fd);
    if (f) {
        if (f->owner)
            free_buffers();
        *f = fakes[--fake_count];
    }
    pthread_mutex_unlock(&lock);
    return real_close(fd);
}

/* The ioctl on a fake descriptor; -2 when `fd` is not one of ours. */
static int ioctl_fake(int fd, unsigned long request, void *arg)
{
    resolve();
    configure();
    pthread_mutex_lock(&lock);
    struct fake *f = find(fd);
    if (!f) {
        pthread_mutex_unlock(&lock);
        return -2;
    }
    int r = fake_ioctl(f, request, arg);
    int e = errno;
    if (debug)
        fprintf(stderr, "fake_v4l2: fd %d ioctl %c %lu -> %d %s\n", fd, (int)((request >> 8) & 0xff), request & 0xff, r, r ? strerror(e) : "");
    pthread_mutex_unlock(&lock);
    errno = e;
    return r;
}

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = ioctl_fake(fd, request, arg);
    return r == -2 ? real_ioctl(fd, request, arg) : r;
}

/* v4l-rs (nokhwa's V4L2 layer) issues its ioctls as syscall(SYS_ioctl, ...)
 * rather than through ioctl(): libc declares ioctl's request type
 * differently per platform (rust-lang/libc#1036). Those are ours too.
 * (PipeWire's pw-v4l2 intercepts ioctl() only, so nokhwa's calls went past
 * it to the kernel.) Everything else is passed on with its six arguments,
 * as glibc's own syscall() reads them. */
long syscall(long number, ...)
{
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    resolve();
    if (number == SYS_ioctl) {
        int r = ioctl_fake((int)a[0], (unsigned long)a[1], (void *)a[2]);
        if (r != -2)
            return r;
    }
    return real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static void *mmap_common(void *(*real)(void *, size_t, int, int, int, off_t), void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    resolve();
    pthread_mutex_lock(&lock);
    struct fake *f = find(fd);
    if (!f) {
        pthread_mutex_unlock(&lock);
        return real(addr, len, prot, flags, fd, off);
    }
    void *r = MAP_FAILED;
    int e = EINVAL;
    if (!present())
        e = ENODEV;
    else if (f->owner && memfd >= 0 && off >= 0 && (size_t)off + len <= buffer_size * (size_t)buffer_count) {
        r = real(addr, len, prot, flags, memfd, off);
        e = errno;
    }
    pthread_mutex_unlock(&lock);
    errno = e;
    return r;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    resolve();
    return mmap_common(real_mmap, addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    resolve();
    return mmap_common(real_mmap64 ? real_mmap64 : real_mmap, addr, len, prot, flags, fd, off);
}

ssize_t read(int fd, void *buf, size_t n)
{
    resolve();
    pthread_mutex_lock(&lock);
    int ours = find(fd) != NULL;
    pthread_mutex_unlock(&lock);
    if (ours) /* no read() I/O: V4L2_CAP_READWRITE is not offered */
        return fail(EINVAL);
    return real_read(fd, buf, n);
}

/* Readiness of one fake descriptor now (lock held): POLLIN with a filled
 * buffer, POLLERR|POLLHUP once unplugged, POLLERR if not streaming (as
 * vb2 answers). Sets *next_due to when a frame may change that. */
static short fake_revents(struct fake *f, double *next_due)
{
    if (!present())
        return POLLERR | POLLHUP;
    if (!f->owner || !streaming)
        return POLLERR;
    double due = advance(f);
    if (due < *next_due)
        *next_due = due;
    return oldest_done() >= 0 ? (POLLIN | POLLRDNORM) : 0;
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    resolve();
    pthread_mutex_lock(&lock);
    int any = 0;
    for (nfds_t i = 0; i < nfds; i++)
        any |= find(fds[i].fd) != NULL;
    pthread_mutex_unlock(&lock);
    if (!any)
        return real_poll(fds, nfds, timeout);

    double deadline = timeout < 0 ? 1e300 : now_s() + timeout / 1000.0;
    int saved[256];
    short fake_events[256];
    if (nfds > 256)
        return fail(EINVAL);
    for (;;) {
        int ready = 0, others = 0;
        double next_due = 1e300;
        pthread_mutex_lock(&lock);
        for (nfds_t i = 0; i < nfds; i++) {
            saved[i] = fds[i].fd;
            struct fake *f = find(fds[i].fd);
            if (f) {
                fds[i].revents = (short)(fake_revents(f, &next_due) & (fds[i].events | POLLERR | POLLHUP));
                ready += fds[i].revents != 0;
                fake_events[i] = fds[i].revents;
                fds[i].fd = -1; /* hidden from the real poll below (which zeroes its revents) */
            } else if (fds[i].fd >= 0) {
                others++;
            }
        }
        pthread_mutex_unlock(&lock);
        double now = now_s();
        double wait = ready ? 0 : (next_due < deadline ? next_due : deadline) - now;
        int ms = wait <= 0 ? 0 : (int)(wait * 1000.0) + 1;
        int r = 0;
        if (others) {
            r = real_poll(fds, nfds, ms);
        } else if (ms > 0) {
            sleep_until(now + wait);
        }
        for (nfds_t i = 0; i < nfds; i++) {
            if (fds[i].fd == -1 && saved[i] != -1)
                fds[i].revents = fake_events[i];
            fds[i].fd = saved[i];
        }
        if (r < 0)
            return r;
        if (ready + r > 0)
            return ready + r;
        if (now_s() >= deadline)
            return 0;
    }
}
